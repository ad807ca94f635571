//! Rebuilds the crate when the model manifest changes. It is embedded from `models/` at the
//! repository root, outside this package, and cargo records such paths absolutely: a build
//! from another checkout sharing the target folder would otherwise keep its own copy. Paths
//! given here are kept relative to the package, so each checkout checks its own.

fn main() {
    println!("cargo:rerun-if-changed=../../models/manifest.toml");
}
