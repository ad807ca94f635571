//! Normalization (in progress).
