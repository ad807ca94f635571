//! `vigil models list | verify | fetch`: the model manifest and the files on this machine.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigil_infer::models::{FileCheck, MODELS_DIR_VAR};
use vigil_infer::{Error, Manifest, ModelSearch, Verification};

use crate::config::Config;

/// Where `vigil models fetch` looks for the download script, from the working directory.
const FETCH_SCRIPT: &str = "scripts/fetch-models";

/// Whether an error message already says to run scripts/fetch-models (so it is not said twice).
pub(crate) fn says_to_fetch(message: &str) -> bool {
    message.contains(FETCH_SCRIPT)
}

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Folder searched first for model files (overrides [models] dir).
    #[arg(long, global = true, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Model manifest to use instead of the built-in one (overrides [models] manifest).
    #[arg(long, global = true, value_name = "FILE")]
    manifest: Option<PathBuf>,
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Each model in the manifest: its role, its files, and where each was found.
    List,
    /// Check the sha256 of every model file; exit 1 when one is missing or wrong.
    Verify,
    /// Download the default models with scripts/fetch-models.
    Fetch,
}

/// Runs a `vigil models` command.
pub fn run(config: &Config, args: ModelsArgs) -> Result<ExitCode> {
    let dir = args.models_dir.or_else(|| config.models.dir.clone());
    let manifest_path = args.manifest.or_else(|| config.models.manifest.clone());
    match args.command {
        ModelsCommand::Fetch => fetch(dir.as_deref()),
        command => {
            let manifest = manifest(manifest_path.as_deref())?;
            let search = ModelSearch::from_env(dir.as_deref());
            let verify = matches!(command, ModelsCommand::Verify);
            Ok(report(&manifest, &search, verify))
        }
    }
}

/// The configured manifest, or the built-in one.
pub fn manifest(path: Option<&Path>) -> Result<Manifest> {
    Ok(match path {
        Some(path) => Manifest::from_file(path)?,
        None => Manifest::builtin()?,
    })
}

/// One line for a checked file: status, manifest path, and where it is or what is wrong.
pub fn describe(check: &FileCheck) -> (Status, String) {
    let name = &check.spec.path;
    match &check.outcome {
        Ok(file) => (
            Status::Ok,
            format!("{name} ({}: {})", file.origin.as_str(), file.path.display()),
        ),
        Err(err @ Error::FileMissing { .. }) => (Status::Missing, format!("{name}: {err}")),
        Err(err) => (Status::Bad, format!("{name}: {err}")),
    }
}

/// How a model file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Found (and verified when asked).
    Ok,
    /// In none of the places searched.
    Missing,
    /// Found but wrong or unreadable.
    Bad,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Bad => "bad",
        }
    }
}

fn report(manifest: &Manifest, search: &ModelSearch, verify: bool) -> ExitCode {
    let how = if verify {
        Verification::Full
    } else {
        Verification::PresenceOnly
    };
    let mut problems = 0;
    for model in &manifest.models {
        let detail = [Some(model.format.as_str()), model.quantization.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{}  role {}, {detail}, {}",
            model.name, model.role, model.architecture
        );
        for check in search.check(model, how) {
            let (status, line) = describe(&check);
            let label = match (status, verify) {
                (Status::Ok, true) => "verified",
                (Status::Ok, false) => "present",
                (other, _) => other.label(),
            };
            println!("  {label:<8} {line}");
            problems += usize::from(status != Status::Ok);
        }
    }
    if problems > 0 {
        eprintln!("{problems} model file(s) missing or wrong; run {FETCH_SCRIPT} to get them");
        if verify {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

fn fetch(dir: Option<&Path>) -> Result<ExitCode> {
    let script = Path::new(FETCH_SCRIPT);
    if !script.is_file() {
        eprintln!(
            "{FETCH_SCRIPT} is not here ({}): run `vigil models fetch` from a Vigil checkout, or \
             copy a models folder made there to this machine and point {MODELS_DIR_VAR} or \
             [models] dir at it; `vigil models verify` checks the copy",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "unknown working directory".into())
        );
        return Ok(ExitCode::from(1));
    }
    let mut command = std::process::Command::new(script);
    if let Some(dir) = dir {
        command.env(MODELS_DIR_VAR, dir);
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {FETCH_SCRIPT}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
