//! Finds the input files under the paths given on the command line.

use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Extensions read when walking a folder; a file named explicitly is read whatever its name.
const EXTENSIONS: [&str; 9] = [
    "md", "markdown", "txt", "html", "htm", "xhtml", "xml", "json", "wiki",
];

/// The inputs found: files to analyse, and the paths that could not be read (each error names
/// its path) so the caller reports them and still analyses the rest.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Files to analyse, in order.
    pub files: Vec<PathBuf>,
    /// Paths that could not be read or listed.
    pub errors: Vec<anyhow::Error>,
}

/// The files to analyse: explicit files as given, folders walked recursively in name order,
/// skipping hidden entries and files of other types.
pub fn collect(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for path in paths {
        let found = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut inputs, &mut HashSet::new()),
            Ok(meta) if meta.is_file() => {
                inputs.files.push(path.clone());
                Ok(())
            }
            Ok(_) => Err(anyhow::anyhow!("{}: not a file or folder", path.display())),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        };
        if let Err(e) = found {
            inputs.errors.push(e);
        }
    }
    inputs
}

/// Walks `dir`; `seen` holds the folders already walked (canonical paths), so a symbolic link
/// back up the tree is not followed in circles.
fn walk(dir: &Path, inputs: &mut Inputs, seen: &mut HashSet<PathBuf>) -> Result<()> {
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
            if let Err(e) = walk(&path, inputs, seen) {
                inputs.errors.push(e);
            }
        } else if path.is_file() && wanted(&path) {
            inputs.files.push(path);
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
        let got = collect(std::slice::from_ref(&root)).files;
        let names: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["README", "a.json", "b/z.md"]);
        let missing = collect(&[root.join("missing"), root.join("a.json")]);
        assert_eq!(missing.files.len(), 1);
        assert!(missing.errors[0].to_string().contains("missing"));
        std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();
        assert_eq!(
            collect(std::slice::from_ref(&root)).files.len(),
            3,
            "a link loop is walked once"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
