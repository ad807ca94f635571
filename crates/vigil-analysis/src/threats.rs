//! threats stage (in progress).
