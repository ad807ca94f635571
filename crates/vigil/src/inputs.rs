//! Finds the input files under the paths given on the command line.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Extensions read when walking a folder; a file named explicitly is read whatever its name.
const EXTENSIONS: [&str; 9] = [
    "md", "markdown", "txt", "html", "htm", "xhtml", "xml", "json", "wiki",
];

/// The files to analyse: explicit files as given, folders walked recursively in name order,
/// skipping hidden entries and files of other types.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: no such file or folder", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out, &mut HashSet::new())?;
        } else if meta.is_file() {
            out.push(path.clone());
        } else {
            bail!("{}: not a file or folder", path.display());
        }
    }
    Ok(out)
}

/// Walks `dir`; `seen` holds the folders already walked (canonical paths), so a symbolic link
/// back up the tree is not followed in circles.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) -> Result<()> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("{}: cannot resolve", dir.display()))?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out, seen)?;
        } else if path.is_file() && wanted(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn wanted(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_in_order_and_skips_hidden_and_other_types() {
        let root = std::env::temp_dir().join(format!("vigil-inputs-{}", std::process::id()));
        std::fs::create_dir_all(root.join("b/.git")).unwrap();
        for f in [
            "b/z.md",
            "a.json",
            "b/.git/config.md",
            "image.png",
            "README",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let got = collect(std::slice::from_ref(&root)).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["README", "a.json", "b/z.md"]);
        assert!(collect(&[root.join("missing")]).is_err());
        std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();
        assert_eq!(
            collect(std::slice::from_ref(&root)).unwrap().len(),
            3,
            "a link loop is walked once"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
