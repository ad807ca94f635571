//! The `vigil` command line.

fn main() {}
