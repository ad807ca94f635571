//! The `vigil` command line: parses flags, loads the configuration and calls the library.

mod assist;
mod bench;
mod config;
mod csv;
mod doctor;
mod inputs;
mod models;
mod serve;
mod store;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigil_analysis::report::{self, OutputFormat};
use vigil_analysis::score::ScoringConfig;
use vigil_analysis::{eval, Engine};
use vigil_catalog::Catalog;
use vigil_core::{Review, Severity};

use crate::config::{Config, LogFormat};

/// Vigil finds the security and privacy risks in planned work (design documents, Jira, GitHub,
/// Azure DevOps, Linear, Confluence) before code exists.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
struct Cli {
    /// Configuration file [default: config/vigil.toml when present].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (overrides [log] level), e.g. `info` or `vigil=debug`.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log format (overrides [log] format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse design documents and tickets: a data-flow diagram and ranked findings for each.
    Analyze(AnalyzeArgs),
    /// Measure analysis quality on evaluation cases (folders with an artifact and gold.toml).
    Eval(EvalArgs),
    /// Time the deterministic pipeline on a 1,000-word design document.
    Bench(bench::BenchArgs),
    /// List or show the threat rules in use (built in, plus the rules folder).
    Rules(RulesArgs),
    /// The model files: list them, verify their sha256, fetch the defaults.
    Models(models::ModelsArgs),
    /// Check the installation: configuration, catalogue, models, data directory, disk, port.
    Doctor,
    /// Seed memory from documents and tickets, and from exports of past decisions (CSV or JSON).
    Ingest(store::IngestArgs),
    /// Write a consistent snapshot of the data directory while the service runs.
    Backup(store::BackupArgs),
    /// Replace the data directory's stores with a snapshot (refused while the service runs); the
    /// replaced database is kept beside it.
    Restore(store::RestoreArgs),
    /// Run the service: API, webhook inbox and its workers ([server] and [connectors]).
    Serve,
    /// Manage API tokens: create (secret shown once), list, revoke.
    #[command(subcommand)]
    Token(serve::TokenCommand),
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Files or folders (read recursively). Formats are detected from content: Markdown, HTML,
    /// Confluence storage format, Jira (REST v2/v3, search results), GitHub, Azure DevOps, Linear.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: table, json, markdown, sarif, mermaid, dot or svg.
    #[arg(short, long, default_value = "table")]
    format: OutputFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Folder of customer rules (overrides [analysis] rules_dir).
    #[arg(long, value_name = "DIR")]
    rules_dir: Option<PathBuf>,
    /// Exit with status 3 when a finding of this severity or higher is found: critical, high,
    /// medium, low or info.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Colour the table output (default: when standard output is a terminal).
    #[arg(long)]
    color: Option<bool>,
    /// Analyse without models: no embeddings, no chat model (sets [llm] mode = "off").
    #[arg(long)]
    no_llm: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// Folder of evaluation cases.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Folder of customer rules (overrides [analysis] rules_dir).
    #[arg(long, value_name = "DIR")]
    rules_dir: Option<PathBuf>,
    /// Evaluate without models: no embeddings, no chat model (sets [llm] mode = "off").
    #[arg(long)]
    no_llm: bool,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    /// Show one rule in full.
    #[arg(value_name = "RULE_ID")]
    id: Option<String>,
    /// Folder of customer rules (overrides [analysis] rules_dir).
    #[arg(long, value_name = "DIR")]
    rules_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", crate::said(&err));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, `what: why: deeper why`. A cause whose words the line
/// already holds is left out: many errors put their cause in their own message as well.
pub(crate) fn said(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The first five of `items`, comma separated, and how many more there are.
pub(crate) fn first_few(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    match items.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// `println!` panics when standard output is a pipe whose reader has gone (`vigil doctor |
/// head -1`). That panic ends the process quietly instead, with the status a shell reports for
/// a process stopped by SIGPIPE (141; 0 where there is no SIGPIPE). Another failure to write
/// standard output (a full disk, `>/dev/full`) is one line of error and exit status 1. Any other
/// panic is reported as before.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout(message) {
            std::process::exit(if cfg!(unix) { 128 + 13 } else { 0 });
        }
        if let Some(reason) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write the output: {reason}");
            std::process::exit(1);
        }
        report(info);
    }));
}

/// Whether a panic message is the standard library's for a write to a closed stdout.
fn is_closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout")
        && (message.contains("Broken pipe") || message.contains("os error 32"))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let loaded = Config::load(cli.config.as_deref());
    // The doctor reports a bad configuration as one of its checks rather than stopping on it.
    let command = match cli.command {
        Command::Doctor => return Ok(doctor::run(cli.config.as_deref(), loaded)),
        command => command,
    };
    let mut config = loaded?;
    if let Some(level) = cli.log_level {
        config.log.level = level;
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    init_logging(&config)?;
    match command {
        Command::Analyze(args) => analyze(&config, args),
        Command::Eval(args) => run_eval(&config, args),
        Command::Bench(args) => {
            let engine = engine(&config, None)?;
            bench::run(&engine, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules(args) => rules(&config, args),
        Command::Models(args) => models::run(&config, args),
        Command::Serve => serve::serve(&config, engine(&config, None)?),
        Command::Token(command) => serve::token(&config, command),
        Command::Doctor => Ok(doctor::run(cli.config.as_deref(), Ok(config))),
        Command::Ingest(args) => {
            let engine = engine(&config, None)?;
            store::ingest(&config, &engine, args)
        }
        Command::Backup(args) => store::backup(&config, args),
        Command::Restore(args) => store::restore(&config, args),
    }
}

fn init_logging(config: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("invalid log filter `{}`", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn catalog(config: &Config, rules_dir: Option<&Path>) -> Result<Catalog> {
    let default_dir = Path::new(config::DEFAULT_RULES_DIR);
    let dir = rules_dir
        .or(config.analysis.rules_dir.as_deref())
        .or_else(|| default_dir.is_dir().then_some(default_dir));
    match dir {
        Some(dir) => Catalog::with_overrides(dir)
            .with_context(|| format!("loading rules from {}", dir.display())),
        None => Catalog::embedded().context("loading the built-in catalogue"),
    }
}

fn engine(config: &Config, rules_dir: Option<&Path>) -> Result<Engine> {
    let started = std::time::Instant::now();
    let catalog = catalog(config, rules_dir)?;
    let scoring: ScoringConfig = config.scoring.clone();
    let engine = Engine::new(catalog, scoring, config.analysis.limits())
        .with_finding_limits(config.analysis.finding_limits());
    tracing::info!(
        rules = engine.catalog().rules.len(),
        ms = started.elapsed().as_millis() as u64,
        "catalogue loaded"
    );
    Ok(engine)
}

/// The engine with the models `[llm]` asks for, unless `no_llm`.
fn engine_with_models(config: &Config, rules_dir: Option<&Path>, no_llm: bool) -> Result<Engine> {
    let engine = engine(config, rules_dir)?;
    if no_llm {
        return Ok(engine);
    }
    assist::attach(engine, config)
}

fn analyze(config: &Config, args: AnalyzeArgs) -> Result<ExitCode> {
    let engine = engine_with_models(config, args.rules_dir.as_deref(), args.no_llm)?;
    let inputs = inputs::collect(&args.paths);
    for err in &inputs.errors {
        eprintln!("error: {}", crate::said(err));
    }
    let files = inputs.files;
    if files.is_empty() && inputs.errors.is_empty() {
        bail!("no input files found under the given paths");
    }
    let progress = files.len() > 1 && std::io::stderr().is_terminal();
    let mut reviews: Vec<Review> = Vec::new();
    let mut failed = inputs.errors.len();
    for (i, file) in files.iter().enumerate() {
        if progress {
            eprint!(
                "\ranalysing {}/{}: {}\x1b[K",
                i + 1,
                files.len(),
                file.display()
            );
        }
        match analyze_file(&engine, config, file) {
            Ok(mut r) => reviews.append(&mut r),
            Err(err) => {
                if progress {
                    eprintln!();
                }
                eprintln!("error: {}", crate::said(&err));
                failed += 1;
            }
        }
    }
    if progress {
        eprintln!(
            "\ranalysed {} file(s), {} artifact(s)\x1b[K",
            files.len(),
            reviews.len()
        );
    }
    let color = args
        .color
        .unwrap_or_else(|| args.output.is_none() && std::io::stdout().is_terminal());
    let rendered = match args.format {
        OutputFormat::Table => report::table::render_table(&reviews, color),
        format => report::render(&reviews, format),
    };
    write_output(args.output.as_deref(), &rendered)?;
    if failed > 0 {
        eprintln!(
            "{failed} of {} input(s) could not be analysed",
            files.len() + inputs.errors.len()
        );
        return Ok(ExitCode::from(1));
    }
    let over = args.fail_on.is_some_and(|s| {
        reviews
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.score.severity >= s)
    });
    Ok(if over {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn analyze_file(engine: &Engine, config: &Config, file: &Path) -> Result<Vec<Review>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("{}: cannot read", file.display()))?
        .len();
    let limit = config.analysis.max_input_bytes;
    if size > limit as u64 {
        bail!(
            "{}: {size} bytes is over the {limit}-byte limit ([analysis] max_input_bytes)",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let started = std::time::Instant::now();
    let reviews = engine.analyze_bytes(&file.display().to_string(), &bytes)?;
    tracing::debug!(file = %file.display(), artifacts = reviews.len(), ms = started.elapsed().as_millis() as u64, "analysed");
    Ok(reviews)
}

fn run_eval(config: &Config, args: EvalArgs) -> Result<ExitCode> {
    let engine = engine_with_models(config, args.rules_dir.as_deref(), args.no_llm)?;
    if !args.dir.is_dir() {
        bail!("{} is not a folder of evaluation cases", args.dir.display());
    }
    let report = eval::evaluate_dir(&engine, &args.dir)?;
    let rendered = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_table()
    };
    write_output(args.output.as_deref(), &rendered)?;
    let errors = report.cases.iter().filter(|c| c.error.is_some()).count();
    if errors > 0 {
        eprintln!("{errors} case(s) could not be evaluated; they count as misses in the totals");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn rules(config: &Config, args: RulesArgs) -> Result<ExitCode> {
    let catalog = catalog(config, args.rules_dir.as_deref())?;
    let mut out = String::new();
    match args.id {
        Some(id) => {
            let rule = catalog
                .rules
                .get(&id)
                .with_context(|| format!("no rule `{id}`"))?;
            // Printed as a `[[rule]]` block, ready to copy into a rules folder and edit.
            let mut file = toml::Table::new();
            file.insert(
                "rule".to_owned(),
                toml::Value::Array(vec![toml::Value::try_from(rule)?]),
            );
            out = toml::to_string_pretty(&file)?;
        }
        None => {
            for rule in catalog.rules.iter() {
                let state = if rule.enabled { "" } else { "  (disabled)" };
                out.push_str(&format!(
                    "{:<10} {:<22} {}{state}\n",
                    rule.id,
                    rule.category.as_str(),
                    rule.title
                ));
            }
        }
    }
    write_output(None, &out)?;
    Ok(ExitCode::SUCCESS)
}

fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to standard output"),
            }
        }
    }
}
