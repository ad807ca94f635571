//! model stage (in progress).
