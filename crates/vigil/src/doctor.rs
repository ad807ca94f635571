//! `vigil doctor`: checks the installation, one line per check, and fails when one fails.

use anyhow::{Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigil_infer::{ChatModel, ChatOptions, ModelRole, ModelSearch, ModelSpec, Verification};

use crate::config::Config;
use crate::models::{describe, manifest, Status};

/// Below this much free space on the data directory's disk: a warning.
const WARN_FREE_BYTES: u64 = 2 << 30;
/// Below this much: a failure.
const FAIL_FREE_BYTES: u64 = 256 << 20;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

struct Check {
    level: Level,
    name: &'static str,
    detail: String,
}

fn check(level: Level, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        level,
        name,
        detail: detail.into(),
    }
}

/// Runs every check; `config` is the result of loading the configuration.
pub fn run(config_path: Option<&Path>, config: Result<Config>) -> ExitCode {
    let mut checks = Vec::new();
    let origin = config_path.map_or_else(
        || {
            if Path::new(crate::config::DEFAULT_CONFIG).is_file() {
                format!("defaults and {}", crate::config::DEFAULT_CONFIG)
            } else {
                format!("defaults; no {} here", crate::config::DEFAULT_CONFIG)
            }
        },
        show,
    );
    let config = match config {
        Ok(config) => {
            checks.push(check(Level::Ok, "config", format!("parsed ({origin})")));
            config
        }
        Err(err) => {
            checks.push(check(Level::Fail, "config", crate::said(&err)));
            Config::default()
        }
    };
    checks.push(catalogue(&config));
    checks.extend(models(&config));
    let data_dir = config.store.data_dir.clone();
    checks.push(data_dir_writable(&data_dir));
    checks.push(free_space(&data_dir));
    checks.extend(memory(&data_dir));
    // The address `vigil serve` would listen on: `[server] listen` or VIGIL__SERVER__LISTEN.
    checks.push(listen_address(&config.server.listen.to_string()));

    for c in &checks {
        println!("{:<5} {:<10} {}", c.level.label(), c.name, c.detail);
    }
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    if worst == Level::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

fn catalogue(config: &Config) -> Check {
    match crate::catalog(config, None) {
        Ok(catalog) => check(
            Level::Ok,
            "catalogue",
            format!("{} rules loaded", catalog.rules.len()),
        ),
        Err(err) => check(Level::Fail, "catalogue", crate::said(&err)),
    }
}

/// One line per model: verified, missing (a warning: only the model features need them), or
/// wrong (a failure).
fn models(config: &Config) -> Vec<Check> {
    let manifest = match manifest(config.models.manifest.as_deref()) {
        Ok(manifest) => manifest,
        Err(err) => return vec![check(Level::Fail, "models", crate::said(&err))],
    };
    let search = ModelSearch::from_env(config.models.dir.as_deref());
    manifest
        .models
        .iter()
        .map(|model| {
            let checks = search.check(model, Verification::Full);
            let described: Vec<(Status, String)> = checks.iter().map(describe).collect();
            let worst = described.iter().map(|(s, _)| *s).max_by_key(|s| match s {
                Status::Ok => 0,
                Status::Missing => 1,
                Status::Bad => 2,
            });
            let name = &model.name;
            match worst {
                Some(Status::Bad) => {
                    let lines = problem_lines(&described);
                    check(Level::Fail, "models", format!("{name}: {lines}"))
                }
                Some(Status::Missing) => {
                    let lines = problem_lines(&described);
                    check(
                        Level::Warn,
                        "models",
                        format!("{name} ({}): {lines}", model.role),
                    )
                }
                _ if model.role == ModelRole::Chat => chat_model(&search, model, checks.len()),
                _ => check(
                    Level::Ok,
                    "models",
                    format!("{name} ({}): {} file(s) verified", model.role, checks.len()),
                ),
            }
        })
        .collect()
}

/// A verified chat model is also opened: its architecture, tokenizer and chat template (the
/// weights are not loaded).
fn chat_model(search: &ModelSearch, model: &ModelSpec, files: usize) -> Check {
    let name = &model.name;
    let inspected = match search.resolve(model, Verification::Cached) {
        Ok(resolved) => ChatModel::inspect(&resolved, ChatOptions::default()),
        Err(err) => Err(err),
    };
    match inspected {
        Ok(info) => check(
            Level::Ok,
            "models",
            format!(
                "{name} (chat): {files} file(s) verified; {} architecture, context {} tokens, \
                 vocabulary {} tokens, chat template renders",
                info.architecture, info.context_length, info.vocab_size
            ),
        ),
        Err(err) => check(Level::Fail, "models", format!("{name} (chat): {err}")),
    }
}

fn problem_lines(described: &[(Status, String)]) -> String {
    described
        .iter()
        .filter(|(s, _)| *s != Status::Ok)
        .map(|(_, line)| line.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Writes and removes a probe file; a directory that does not exist yet passes when it can be
/// created (it is not created here).
/// Memory's two stores read end to end: every committed artifact version complete in LanceDB.
/// Only for a data directory this release has written memory in (`lance/` exists), so that
/// the check never migrates an older one.
fn memory(dir: &Path) -> Vec<Check> {
    let data = vigil_store::DataDir::new(dir);
    if !data.lance_dir().is_dir() {
        return Vec::new();
    }
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                let ops = vigil_store::OpsStore::open(&data, &Default::default(), &[]).await?;
                let unreviewed = ops
                    .call(|c| vigil_store::reviews::unreviewed_artifacts(c))
                    .await?;
                let Some(dims) = vigil_store::Memory::stored_dimensions(&data).await? else {
                    return anyhow::Ok((None, unreviewed));
                };
                let started = std::time::Instant::now();
                let report = vigil_store::Memory::new(ops, dims).check().await?;
                anyhow::Ok((Some((report, started.elapsed())), unreviewed))
            })
        });
    let (checked, unreviewed) = match checked {
        Ok((report, unreviewed)) => (Ok(report), unreviewed),
        Err(err) => (Err(err), Vec::new()),
    };
    let mut checks = vec![match checked {
        Ok(None) => check(Level::Ok, "memory", "no tables yet"),
        Ok(Some((report, took))) if report.incomplete.is_empty() => check(
            Level::Ok,
            "memory",
            format!(
                "{} artifact version(s), each complete in both stores; {} unfinished write(s) \
                 (invisible; removed when the service starts once they are an hour old, or by a restore); read in {} ms",
                report.versions,
                report.unfinished,
                took.as_millis()
            ),
        ),
        Ok(Some((report, _))) => check(
            Level::Fail,
            "memory",
            format!(
                "{} of {} committed artifact version(s) lack rows in {}: restore a snapshot \
                 (vigil restore)",
                report.incomplete.len(),
                report.versions,
                show(&data.lance_dir())
            ),
        ),
        Err(err) => check(Level::Fail, "memory", crate::said(&err)),
    }];
    if !unreviewed.is_empty() {
        checks.push(check(
            Level::Warn,
            "reviews",
            format!(
                "{} artifact(s) whose latest version has no review (a submission cut off, or a \
                 snapshot taken during one): {}; submit them again or `vigil ingest` their \
                 files",
                unreviewed.len(),
                crate::first_few(&unreviewed)
            ),
        ));
    }
    checks
}

fn data_dir_writable(dir: &Path) -> Check {
    let (probe_dir, note) = if dir.is_dir() {
        (dir.to_path_buf(), String::new())
    } else {
        match existing_ancestor(dir) {
            Some(parent) => (parent, " (does not exist yet; can be created)".to_owned()),
            None => {
                return check(
                    Level::Fail,
                    "data dir",
                    format!("{}: no such place", show(dir)),
                )
            }
        }
    };
    let probe = probe_dir.join(format!(".vigil-doctor-{}", std::process::id()));
    let written = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => check(
            Level::Ok,
            "data dir",
            format!("{} writable{note}", show(dir)),
        ),
        Err(err) => check(
            Level::Fail,
            "data dir",
            format!("{}: cannot write in {}: {err}", show(dir), show(&probe_dir)),
        ),
    }
}

fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let absolute = std::env::current_dir().ok()?.join(path);
    absolute
        .ancestors()
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

fn free_space(dir: &Path) -> Check {
    let Some(place) = existing_ancestor(dir) else {
        return check(Level::Warn, "disk", format!("{}: no such place", show(dir)));
    };
    match available_bytes(&place) {
        Ok(bytes) => {
            let level = if bytes < FAIL_FREE_BYTES {
                Level::Fail
            } else if bytes < WARN_FREE_BYTES {
                Level::Warn
            } else {
                Level::Ok
            };
            let gib = bytes as f64 / f64::from(1u32 << 30);
            check(
                level,
                "disk",
                format!("{gib:.1} GiB free at {}", show(&place)),
            )
        }
        Err(err) => check(
            Level::Warn,
            "disk",
            format!("cannot tell free space: {}", crate::said(&err)),
        ),
    }
}

/// Free bytes for unprivileged users on the filesystem holding `path`, from POSIX `df -Pk`.
fn available_bytes(path: &Path) -> Result<u64> {
    let output = std::process::Command::new("df")
        .arg("-Pk")
        .arg(path)
        .output()
        .context("cannot run df")?;
    if !output.status.success() {
        anyhow::bail!("df -Pk {} failed", show(path));
    }
    parse_df_available(&String::from_utf8_lossy(&output.stdout))
        .context("unexpected output from df -Pk")
}

/// The `Available` column (1024-byte blocks) of `df -Pk`'s data line, in bytes.
fn parse_df_available(output: &str) -> Option<u64> {
    let line = output.lines().nth(1)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // Filesystem, blocks, used, available, capacity, mount point (which may hold spaces).
    let kib: u64 = fields.get(3)?.parse().ok()?;
    Some(kib * 1024)
}

fn listen_address(address: &str) -> Check {
    match TcpListener::bind(address) {
        Ok(_) => check(Level::Ok, "listen", format!("{address} is free")),
        Err(err) => check(
            Level::Warn,
            "listen",
            format!("{address} cannot be bound ({err}); is another server running?"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read() {
        let out = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                   /dev/vda         263174212 16000000  78643200      18% /\n";
        assert_eq!(parse_df_available(out), Some(78643200 * 1024));
        assert_eq!(parse_df_available("Filesystem\n"), None);
    }

    #[test]
    fn data_dir_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let c = data_dir_writable(dir.path());
        assert_eq!(c.level, Level::Ok, "{}", c.detail);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let later = dir.path().join("not/yet");
        let c = data_dir_writable(&later);
        assert_eq!(c.level, Level::Ok, "{}", c.detail);
        assert!(c.detail.contains("can be created"));
        assert!(!later.exists());
    }

    #[test]
    fn a_busy_port_is_a_warning() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = held.local_addr().unwrap().to_string();
        assert_eq!(listen_address(&address).level, Level::Warn);
    }
}
