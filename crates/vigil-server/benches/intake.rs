//! Sustained durable webhook intake and findings-list latency, printed as figures.
//!
//! Intake: the service runs in process on loopback over the real operational store (SQLite,
//! WAL, `synchronous = FULL`) in a temporary folder; clients post signed GitHub webhooks over
//! keep-alive connections for a fixed time and each 202 is timed. Targets: at least 500
//! events/s with p99 under 50 ms.
//!
//! Findings list: 100,000 findings in the SQLite review store (in a temporary folder), pages of
//! filtered lists timed through the router. Target: p99 under 100 ms.
//!
//! `cargo test -p vigil-server --bench intake --locked` (in the test profile the project builds
//! in, numeric crates optimised; `cargo bench` would start a separate release build).
//! `VIGIL_BENCH_SECS` sets the intake run's length (default 10), `VIGIL_BENCH_CLIENTS` its
//! clients (default 16).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use vigil_analysis::Engine;
use vigil_connectors::{ConnectorConfig, Tool};
use vigil_server::loadgen::{self, LoadPlan};
use vigil_server::sqlite::SqliteReviews;
use vigil_server::store::{MemoryInbox, MemoryTokens};
use vigil_server::{issue_token, AppState, Role, ServerConfig, Stores};
use vigil_store::reviews::{insert_review, NewReview};

const SECRET: &str = "bench-secret";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn connectors() -> BTreeMap<String, ConnectorConfig> {
    let mut map = BTreeMap::new();
    map.insert(
        "gh".to_owned(),
        ConnectorConfig {
            tool: Tool::Github,
            secret: Some(SECRET.to_owned()),
            basic_user: None,
            basic_password: None,
            header_name: None,
            header_value: None,
        },
    );
    map
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Arc::new(Engine::with_defaults().expect("catalogue"));
    runtime.block_on(intake(engine.clone()));
    runtime.block_on(findings_list(engine));
}

async fn intake(engine: Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let stores = vigil_server::sqlite::open_stores(dir.path(), Duration::from_secs(5))
        .await
        .expect("operational store");
    let inbox = stores.inbox.clone();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..ServerConfig::default()
    };
    let state = AppState::new(config, connectors(), engine, stores).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let addr = listener.local_addr().expect("address");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_server::serve(state, listener, async {
        let _ = stop_rx.await;
    }));

    let secs = env_or("VIGIL_BENCH_SECS", 10);
    let plan = LoadPlan {
        addr,
        connector: "gh".to_owned(),
        secret: SECRET.to_owned(),
        clients: env_or("VIGIL_BENCH_CLIENTS", 16) as usize,
        events: u64::MAX,
        max_duration: Duration::from_secs(secs),
        delivery_prefix: "bench".to_owned(),
    };
    let report = tokio::task::spawn_blocking(move || loadgen::run(&plan, &AtomicBool::new(false)))
        .await
        .expect("load generator");
    let depth = inbox.depth().await.expect("depth");
    let _ = stop_tx.send(());
    let _ = server.await;

    println!(
        "webhook intake (durable, SQLite synchronous=FULL): {} events in {:.1} s = {:.0} events/s; \
         time to 202 p50 {:.1} ms, p99 {:.1} ms; refused {}, failed {}; \
         analysed during the run {} (workers share the CPU)",
        report.acknowledged.len(),
        report.elapsed.as_secs_f64(),
        report.rate(),
        report.percentile_ms(0.50),
        report.percentile_ms(0.99),
        report.refused,
        report.failed,
        depth.done,
    );
    println!(
        "  targets: >= 500 events/s: {}; p99 < 50 ms: {}",
        verdict(report.rate() >= 500.0),
        verdict(report.percentile_ms(0.99) < 50.0)
    );
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

async fn findings_list(engine: Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let options = vigil_store::OpsOptions::default();
    let store = vigil_store::OpsStore::open(&vigil_store::DataDir::new(dir.path()), &options, &[])
        .await
        .expect("operational store");
    let reviews = SqliteReviews::new(store, Default::default());
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/partner-webhooks.md"
    ))
    .expect("fixture");
    let template = engine.analyze_bytes("bench", &text).expect("analysis")[0].clone();
    let per_review = template.findings.len().max(1);
    let mut total = 0;
    let mut n = 0;
    let started = Instant::now();
    while total < 100_000 {
        let mut batch = Vec::new();
        for _ in 0..500 {
            let mut review = template.clone();
            review.artifact = format!("bench-{n}");
            review.meta.team = Some(format!("team-{}", n % 20));
            for f in &mut review.findings {
                f.id = format!("{}-{n}", f.id);
            }
            total += review.findings.len();
            batch.push(NewReview {
                id: format!("r{n}"),
                source: "bench".to_owned(),
                created_ms: n as u64,
                review,
                recall: Vec::new(),
            });
            n += 1;
        }
        reviews
            .ops()
            .transaction(move |tx| {
                for r in &batch {
                    insert_review(tx, r)?;
                }
                Ok(())
            })
            .await
            .expect("stored");
    }
    let loaded = started.elapsed().as_secs_f64();

    let stores = Stores {
        tokens: Arc::new(MemoryTokens::default()),
        inbox: Arc::new(MemoryInbox::default()),
        reviews: Arc::new(reviews),
    };
    let issued = issue_token("bench", Role::Security, 0).expect("token");
    stores
        .tokens
        .insert(&issued.record)
        .await
        .expect("token stored");
    let state =
        AppState::new(ServerConfig::default(), connectors(), engine, stores).expect("state");
    let app = vigil_server::router(state);
    let queries = [
        "/api/v1/findings?limit=50",
        "/api/v1/findings?severity=high&limit=50",
        "/api/v1/findings?team=team-3&status=open&offset=100&limit=50",
        "/api/v1/findings?framework=owasp_2021&tool=markdown&limit=50",
        "/api/v1/findings?framework=CWE-319&offset=5000&limit=50",
    ];
    let mut times = Vec::new();
    let mut slowest = vec![0.0f64; queries.len()];
    for i in 0..100 {
        let uri = queries[i % queries.len()];
        let request = Request::get(uri)
            .header("authorization", format!("Bearer {}", issued.secret))
            .body(Body::empty())
            .expect("request");
        let started = Instant::now();
        let response = app.clone().oneshot(request).await.expect("response");
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        times.push(ms);
        slowest[i % queries.len()] = slowest[i % queries.len()].max(ms);
    }
    for (uri, ms) in queries.iter().zip(&slowest) {
        println!("  slowest {ms:.1} ms: {uri}");
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "findings list over {total} findings ({n} reviews, {per_review} each, SQLite store, \
         loaded in {loaded:.1} s): p50 {:.1} ms, p99 {:.1} ms; target p99 < 100 ms: {}",
        p(0.5),
        p(0.99),
        verdict(p(0.99) < 100.0)
    );
}
