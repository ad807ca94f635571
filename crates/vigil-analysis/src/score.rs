//! score stage (in progress).
