//! extract stage (in progress).
