//! eval stage (in progress).
