//! paths stage (in progress).
