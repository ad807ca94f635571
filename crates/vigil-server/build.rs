//! Rebuilds the crate when a console file changes. The files are embedded from `web/` at the
//! repository root, outside this package, and cargo records such paths absolutely: a build
//! from another checkout sharing the target folder would otherwise keep its own copies.
//! Paths given here are kept relative to the package, so each checkout checks its own.

fn main() {
    for file in ["index.html", "app.js", "app.css", "favicon.svg"] {
        println!("cargo:rerun-if-changed=../../web/{file}");
    }
}
