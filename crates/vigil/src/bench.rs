//! `vigil bench`: times the deterministic pipeline on a 1,000-word design document, on one
//! thread, and prints artifacts per second, the median and p90 per document, and the ratio to
//! normalization alone measured in the same run (the baseline) and to the 20 ms target.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_analysis::normalize::{self, Limits};
use vigil_analysis::Engine;

/// The design document timed by default, built into the binary.
const DEFAULT_DOC: &str = include_str!("../benches/design-doc.md");

/// Target for one 1,000-word document through the whole pipeline.
const TARGET: Duration = Duration::from_millis(20);

/// Options of `vigil bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Document to time instead of the built-in 1,000-word design document.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Timed runs.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

/// Runs the benchmark and prints the figures.
pub fn run(engine: &Engine, args: &BenchArgs) -> Result<()> {
    let (origin, bytes) = match &args.input {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => ("design-doc.md".to_owned(), DEFAULT_DOC.as_bytes().to_vec()),
    };
    let iterations = args.iterations.max(5);
    let reviews = engine.analyze_bytes(&origin, &bytes)?;
    let words: usize = normalize::normalize(&origin, &bytes, &Limits::default())?
        .iter()
        .map(|a| a.word_count())
        .sum();
    let findings: usize = reviews.iter().map(|r| r.findings.len()).sum();

    let baseline = time(iterations, || {
        normalize::normalize(&origin, &bytes, &Limits::default())
            .map(|a| a.len())
            .unwrap_or(0)
    });
    let pipeline = time(iterations, || {
        engine
            .analyze_bytes(&origin, &bytes)
            .map(|r| r.len())
            .unwrap_or(0)
    });

    let median = pipeline.median();
    println!(
        "document          {origin}: {words} words, {} bytes, {findings} findings",
        bytes.len()
    );
    println!("iterations        {iterations} (one thread)");
    println!(
        "pipeline median   {:.2} ms   p90 {:.2} ms",
        ms(median),
        ms(pipeline.p90())
    );
    println!("artifacts/s       {:.1}", 1.0 / median.as_secs_f64());
    println!(
        "words/s           {:.0}",
        words as f64 / median.as_secs_f64()
    );
    println!(
        "baseline          normalize only: median {:.3} ms",
        ms(baseline.median())
    );
    println!(
        "ratio             pipeline / normalize = {:.1}x",
        median.as_secs_f64() / baseline.median().as_secs_f64()
    );
    println!(
        "target            {:.0} ms per 1,000-word document: median is {:.2}x the target ({})",
        ms(TARGET),
        median.as_secs_f64() / TARGET.as_secs_f64(),
        if median <= TARGET { "met" } else { "missed" }
    );
    Ok(())
}

struct Samples(Vec<Duration>);

impl Samples {
    fn median(&self) -> Duration {
        self.0[self.0.len() / 2]
    }
    fn p90(&self) -> Duration {
        self.0[(self.0.len() * 9 / 10).min(self.0.len() - 1)]
    }
}

fn time(iterations: usize, mut f: impl FnMut() -> usize) -> Samples {
    let mut sink = 0usize;
    for _ in 0..3 {
        sink = sink.wrapping_add(f());
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            sink = sink.wrapping_add(std::hint::black_box(f()));
            started.elapsed()
        })
        .collect();
    std::hint::black_box(sink);
    samples.sort();
    Samples(samples)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
