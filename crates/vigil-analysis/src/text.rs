//! text stage (in progress).
