//! `vigil ingest`, `vigil backup` and `vigil restore`: seeding memory and snapshots of the data
//! directory.

use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use vigil_analysis::Engine;
use vigil_infer::{Embedder, ModelRole, ModelSearch, Verification};
use vigil_server::app::review_id;
use vigil_server::sqlite::SqliteReviews;
use vigil_server::store::StoredReview;
use vigil_store::decisions::now_ms;
use vigil_store::{DataDir, Decision, OpsOptions, OpsStore};

use crate::config::Config;

/// Arguments of `vigil ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Documents and tickets (files or folders, read recursively), and exports of past
    /// decisions: a `.csv` file, or a `.json` array of decision objects.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Arguments of `vigil backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The snapshot folder to write (must not exist): the operational store and memory's
    /// tables, consistent with each other.
    #[arg(value_name = "DIR")]
    pub dest: PathBuf,
}

/// Arguments of `vigil restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A snapshot written by `vigil backup`: its folder (or the single database file that
    /// releases before memory moved to LanceDB wrote).
    #[arg(value_name = "SNAPSHOT")]
    pub src: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // Timers and I/O enabled: memory's LanceDB commits run under a timeout.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn open_ops(config: &Config) -> Result<OpsStore> {
    let data = DataDir::new(&config.store.data_dir);
    let options = OpsOptions {
        busy_timeout: std::time::Duration::from_millis(config.store.busy_timeout_ms),
    };
    OpsStore::open(&data, &options, &[])
        .await
        .with_context(|| format!("opening the data directory {}", data.root().display()))
}

/// The default embeddings model, loaded.
pub(crate) fn embedder(config: &Config) -> Result<Embedder> {
    let manifest = crate::models::manifest(config.models.manifest.as_deref())?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_env(config.models.dir.as_deref());
    let model = search.resolve(spec, Verification::Cached).map_err(|err| {
        let message = err.to_string();
        let fetch = if crate::models::says_to_fetch(&message) {
            ""
        } else {
            "; run scripts/fetch-models"
        };
        anyhow::anyhow!("the embeddings model is needed to ingest{fetch}: {message}")
    })?;
    Ok(Embedder::load(&model)?)
}

/// What one ingest run did.
#[derive(Debug, Default)]
struct Tally {
    versions: usize,
    unchanged: usize,
    embedded: usize,
    reused: usize,
    decisions: usize,
    decisions_replaced: usize,
    decisions_unchanged: usize,
    failed: usize,
    /// Said once the file in hand is done.
    warnings: Vec<String>,
}

/// `vigil ingest PATH...`.
pub fn ingest(config: &Config, engine: &Engine, args: IngestArgs) -> Result<ExitCode> {
    let inputs = crate::inputs::collect(&args.paths);
    for err in &inputs.errors {
        eprintln!("error: {}", crate::said(err));
    }
    if inputs.files.is_empty() {
        bail!("no input files found under the given paths");
    }
    let embedder: Arc<Embedder> = Arc::new(embedder(config)?);
    let started = Instant::now();
    let mut tally = Tally {
        failed: inputs.errors.len(),
        ..Tally::default()
    };

    runtime()?.block_on(async {
        let ops = open_ops(config).await?;
        let reviews = SqliteReviews::new(
            ops,
            crate::serve::recall_with(config, Some(embedder.clone())),
        );
        let mut progress = Progress::new(inputs.files.len());
        for file in &inputs.files {
            progress.step(file);
            let done = ingest_file(
                engine,
                config,
                &reviews,
                embedder.as_ref(),
                file,
                &mut tally,
            )
            .await;
            if let Err(err) = done {
                progress.interrupt();
                eprintln!("error: {}", about(file, &err));
                tally.failed += 1;
            }
            for warning in std::mem::take(&mut tally.warnings) {
                progress.interrupt();
                eprintln!("warning: {warning}");
            }
        }
        progress.finish();
        // Fold what was written into memory's indexes now, so that the service's first searches
        // do not scan unindexed rows.
        if tally.versions + tally.decisions + tally.decisions_replaced > 0 {
            reviews
                .memory()
                .optimize()
                .await
                .context("indexing memory")?;
        }
        anyhow::Ok(())
    })?;

    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingested {} artifact version(s) ({} unchanged), {} decision(s) ({} replaced, {} \
         unchanged); {} chunk(s) embedded, {} reused; {:.1} s, {:.2} artifacts/s",
        tally.versions,
        tally.unchanged,
        tally.decisions,
        tally.decisions_replaced,
        tally.decisions_unchanged,
        tally.embedded,
        tally.reused,
        secs,
        (tally.versions + tally.unchanged) as f64 / secs.max(1e-9)
    );
    Ok(if tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn ingest_file(
    engine: &Engine,
    config: &Config,
    reviews: &SqliteReviews,
    embedder: &Embedder,
    file: &Path,
    tally: &mut Tally,
) -> Result<()> {
    let bytes = std::fs::read(file).context("cannot read")?;
    if let Some(decisions) = decision_export(file, &bytes)? {
        let stored = reviews.memory().add_decisions(&decisions, embedder).await?;
        if !stored.replaced.is_empty() {
            tally.warnings.push(format!(
                "{}: {} decision(s) replaced the stored ones with the same id: {}",
                file.display(),
                stored.replaced.len(),
                crate::first_few(&stored.replaced)
            ));
        }
        tally.decisions += stored.added;
        tally.decisions_replaced += stored.replaced.len();
        tally.decisions_unchanged += stored.unchanged;
        return Ok(());
    }

    let origin = file.display().to_string();
    let artifacts =
        vigil_analysis::normalize::normalize(&origin, &bytes, &config.analysis.limits())?;
    for artifact in &artifacts {
        // The service's own path: text and finding texts into memory, memory consulted (decisions,
        // approved patterns, precedents, feedback), then the review, visible in `vigil serve`.
        let review = engine.analyze_artifact(artifact);
        let stored = StoredReview {
            id: review_id(&review),
            source: "ingest".to_owned(),
            created_ms: now_ms() as u64,
            review,
        };
        let done = reviews.store_analysis(stored, Some(artifact)).await?;
        match done.put {
            Some(put) => {
                tally.embedded += put.embedded;
                tally.reused += put.reused;
                if put.created {
                    tally.versions += 1;
                } else {
                    tally.unchanged += 1;
                }
            }
            None => tally.unchanged += 1,
        }
    }
    Ok(())
}

/// `FILE: what went wrong`, the file named once: the analysis's own errors begin with it.
fn about(file: &Path, err: &anyhow::Error) -> String {
    let (name, message) = (file.display().to_string(), crate::said(err));
    if message.starts_with(&format!("{name}: ")) {
        message
    } else {
        format!("{name}: {message}")
    }
}

/// The decisions in a tracker export: a `.csv` file, or JSON holding an array of objects that
/// each have `kind` and `rationale`. `None` for anything else (a document).
fn decision_export(file: &Path, bytes: &[u8]) -> Result<Option<Vec<Decision>>> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("csv") {
        let text = std::str::from_utf8(bytes).context("a CSV export must be UTF-8")?;
        return crate::csv::decisions(text).map(Some);
    }
    if !ext.eq_ignore_ascii_case("json") {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(bytes) else {
        return Ok(None);
    };
    let is_export = !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("kind").is_some() && i.get("rationale").is_some());
    if !is_export {
        return Ok(None);
    }
    let mut seen = std::collections::HashMap::new();
    let decisions = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            let mut decision: Decision = serde_json::from_value(item)
                .with_context(|| format!("decision {} of the export", n + 1))?;
            decision
                .check()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("decision {} of the export", n + 1))?;
            if let Some(first) = seen.insert(decision.id.clone(), n + 1) {
                anyhow::bail!(
                    "decision {} of the export: id `{}` is decision {first}'s as well",
                    n + 1,
                    decision.id
                );
            }
            // An export without the time a decision was made: it is recorded now.
            if decision.created_at_ms <= 0 {
                decision.created_at_ms = now_ms();
            }
            Ok(decision)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(decisions))
}

/// A progress bar on stderr when it is a terminal.
struct Progress {
    total: usize,
    done: usize,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            on: std::io::stderr().is_terminal(),
        }
    }

    fn step(&mut self, file: &Path) {
        self.done += 1;
        if !self.on {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        eprint!(
            "\r[{}{}] {}/{} {}\x1b[K",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total,
            file.display()
        );
        let _ = std::io::stderr().flush();
    }

    fn interrupt(&self) {
        if self.on {
            eprintln!();
        }
    }

    fn finish(&self) {
        if self.on {
            eprintln!("\r{} file(s)\x1b[K", self.total);
        }
    }
}

/// `vigil backup DIR`: a consistent snapshot of the data directory, taken while the service
/// runs (see `vigil_store::snapshot`).
pub fn backup(config: &Config, args: BackupArgs) -> Result<ExitCode> {
    let started = Instant::now();
    // Opening the stores would create an empty data directory where a path is mistyped.
    let db = DataDir::new(&config.store.data_dir).ops_db();
    if !db.exists() {
        anyhow::bail!(
            "nothing to back up: {} does not exist (is `[store] data_dir`, or \
             VIGIL__STORE__DATA_DIR, the data directory?)",
            db.display()
        );
    }
    let info = runtime()?.block_on(async {
        let ops = open_ops(config).await?;
        let info = vigil_store::snapshot::backup(&ops, &args.dest).await?;
        anyhow::Ok(info)
    })?;
    let tables: Vec<String> = info
        .lance_tables
        .iter()
        .map(|(t, v)| format!("{t} v{v}"))
        .collect();
    println!(
        "snapshot written to {} ({} bytes, {} ms; memory tables: {})",
        args.dest.display(),
        info.bytes,
        started.elapsed().as_millis(),
        if tables.is_empty() {
            "none yet".to_owned()
        } else {
            tables.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `vigil restore SNAPSHOT`: replaces the data directory's stores with a checked snapshot; refused
/// while another process has them open. The database it replaces is kept beside it, and the
/// user is told that tokens, sessions and decisions went back to the snapshot's.
pub fn restore(config: &Config, args: RestoreArgs) -> Result<ExitCode> {
    let data = DataDir::new(&config.store.data_dir);
    let kept = vigil_store::snapshot::restore(&data, &args.src).context("nothing was restored")?;
    // Rows of writes the snapshot's database never committed are removed now: nothing else can
    // be writing (the restore just held the data directory alone).
    let removed = runtime()?.block_on(async {
        let ops = open_ops(config).await?;
        let Some(dims) = vigil_store::Memory::stored_dimensions(&data).await? else {
            return anyhow::Ok(0);
        };
        Ok(vigil_store::Memory::new(ops, dims).repair(true).await?)
    });
    match removed {
        Ok(0) => {}
        Ok(n) => println!("removed {n} memory write(s) the snapshot's database never committed"),
        Err(err) => eprintln!(
            "warning: memory was not tidied after the restore: {}",
            crate::said(&err)
        ),
    }
    println!(
        "restored {} from {}",
        data.ops_db().display(),
        args.src.display()
    );
    if let Some(kept) = kept.kept_db {
        println!("the database it replaced is kept at {}", kept.display());
    }
    if let Some(kept) = kept.kept_lance {
        println!(
            "the memory tables it replaced are kept at {}",
            kept.display()
        );
    }
    eprintln!(
        "warning: API tokens, console sessions and decisions are now as they were when the \
         snapshot was taken: tokens revoked since then are valid again (revoke them again with \
         `vigil token revoke`), and tokens or decisions made since then are gone"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_file_is_named_once() {
        let file = Path::new("/tmp/tw/empty.md");
        let err = anyhow::anyhow!("/tmp/tw/empty.md: the file is empty");
        assert_eq!(about(file, &err), "/tmp/tw/empty.md: the file is empty");
        let err = anyhow::anyhow!("CSV row 3: a decision needs a `rationale`");
        assert_eq!(
            about(file, &err),
            "/tmp/tw/empty.md: CSV row 3: a decision needs a `rationale`"
        );
    }
}
