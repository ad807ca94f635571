//! End-to-end tests of the `vigil` binary: inputs, output formats, exit codes, configuration
//! errors and the other commands, run as a user runs them; `serve` runs the service as a process
//! on loopback.

#[path = "cli/serve.rs"]
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("VIGIL__SCORING__URGENCY_SHARE")
        .output()
        .expect("the binary runs")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_files_are_named_and_the_rest_still_analysed() {
    let dir = fixtures().join("mixed");
    let out = vigil(&["analyze", "--format", "json", path(&dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for bad in ["truncated.json", "empty.md", "binary.txt"] {
        assert!(err.contains(bad), "{bad} not named in: {err}");
    }
    assert!(
        err.contains("invalid JSON") && err.contains("empty") && err.contains("UTF-8"),
        "{err}"
    );
    let reviews: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout(&out))
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reviews.len(), 1, "the good file is still reported");
    assert!(!reviews[0]["findings"].as_array().unwrap().is_empty());
}

#[test]
fn every_output_format_renders() {
    let file = fixtures().join("mixed/loyalty.md");
    type Check<'a> = &'a dyn Fn(&str) -> bool;
    let expect: [(&str, Check); 7] = [
        ("table", &|s| s.contains("Loyalty")),
        ("json", &|s| {
            serde_json::from_str::<serde_json::Value>(s).is_ok()
        }),
        ("markdown", &|s| {
            s.starts_with('#') && s.contains("```mermaid")
        }),
        ("sarif", &|s| {
            serde_json::from_str::<serde_json::Value>(s).unwrap()["version"] == "2.1.0"
        }),
        ("mermaid", &|s| s.contains("flowchart LR")),
        ("dot", &|s| s.contains("digraph")),
        ("svg", &|s| {
            s.contains("<svg") && s.trim_end().ends_with("</svg>")
        }),
    ];
    for (format, check) in expect {
        let out = vigil(&["analyze", "--format", format, path(&file)]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(
            check(&stdout(&out)),
            "{format} output looks wrong:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn output_file_and_fail_on_threshold() {
    let file = fixtures().join("mixed/loyalty.md");
    let target = std::env::temp_dir().join(format!("vigil-cli-{}.sarif", std::process::id()));
    let out = vigil(&[
        "analyze",
        "-f",
        "sarif",
        "-o",
        path(&target),
        "--fail-on",
        "low",
        path(&file),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    std::fs::remove_file(target).unwrap();
    let out = vigil(&[
        "analyze",
        "--fail-on",
        "critical",
        "-f",
        "json",
        path(&file),
    ]);
    let any_critical = stdout(&out).contains("\"severity\": \"critical\"");
    assert_eq!(out.status.code(), Some(if any_critical { 3 } else { 0 }));
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let out = vigil(&["analyze", "--format", "pdf", "x.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pdf"), "{}", stderr(&out));

    let good = fixtures().join("mixed/loyalty.md");
    let out = vigil(&["analyze", "/nonexistent/design.md", path(&good)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing path fails that input only"
    );
    assert!(stderr(&out).contains("/nonexistent/design.md"));
    assert!(stdout(&out).contains("Loyalty"));

    let config = std::env::temp_dir().join(format!("vigil-cli-{}.toml", std::process::id()));
    std::fs::write(&config, "[scoring]\nweights = 1\n").unwrap();
    let out = vigil(&["--config", path(&config), "rules"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("weights"), "{}", stderr(&out));
    std::fs::remove_file(config).unwrap();
}

#[test]
fn customer_rules_override_and_disable_built_in_ones() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listed = stdout(&vigil(&["rules"]));
    assert!(listed.lines().count() >= 135, "{listed}");
    let shown = stdout(&vigil(&["rules", "VGL-S-001"]));
    assert!(shown.starts_with("[[rule]]"), "{shown}");
    std::fs::write(
        dir.join("site.toml"),
        shown.replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    let out = vigil(&["rules", "--rules-dir", path(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out)
        .lines()
        .any(|l| l.starts_with("VGL-S-001") && l.contains("(disabled)")));
    std::fs::write(dir.join("broken.toml"), "[[rule]]\nid = 3\n").unwrap();
    let out = vigil(&["rules", "--rules-dir", path(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.toml"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn doctor_checks_the_listen_address_the_configuration_gives() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("doctor")
        .current_dir(std::env::temp_dir())
        .env("VIGIL__SERVER__LISTEN", &address)
        .output()
        .unwrap();
    let listen = stdout(&out)
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("listen"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        listen.starts_with("warn") && listen.contains(&format!("{address} cannot be bound")),
        "{}",
        stdout(&out)
    );
    // Run where there is no configuration file, it says so.
    if !std::env::temp_dir().join("config/vigil.toml").exists() {
        assert!(
            stdout(&out).contains("parsed (defaults; no config/vigil.toml here)"),
            "{}",
            stdout(&out)
        );
    }
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let data = tempfile::tempdir().unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["token", "create", "--name", "ci", "--role", "auditor"])
        .current_dir(std::env::temp_dir())
        .env("VIGIL__STORE__DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    for args in [&["doctor"][..], &["token", "list"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .current_dir(std::env::temp_dir())
            .env("VIGIL__STORE__DATA_DIR", data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command prints (as `head -1` does after a line).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(out.status.code(), Some(0 | 141)) || out.status.signal() == Some(13),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
    // Output that cannot be written (a full device) is one line of error, not a panic.
    if Path::new("/dev/full").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("doctor")
            .current_dir(std::env::temp_dir())
            .env("VIGIL__STORE__DATA_DIR", data.path())
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("cannot write the output") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_demo_takes_its_options_in_any_order_and_skips_the_browser_tests_setup() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo");
    for args in [
        &["--format", "json", "--with-models"][..],
        &["--with-models", "--format", "json"][..],
        &["examples/markdown", "--format=json", "--with-models"][..],
    ] {
        let out = Command::new("bash")
            .arg(&demo)
            .arg("--dry-run")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("==> scripts/setup --no-e2e\n"), "{text}");
        let analyze = text.lines().find(|l| l.contains(" analyze ")).unwrap_or("");
        assert!(
            analyze.contains("analyze --format json examples/") && !analyze.contains("--no-llm"),
            "{args:?}: {text}"
        );
    }
    let out = Command::new("bash")
        .arg(&demo)
        .args(["--dry-run", "--frmat", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--frmat"), "{}", stderr(&out));
    let out = Command::new("bash")
        .arg(&demo)
        .args(["--format", "bogus", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown format"), "{}", stderr(&out));
}

#[test]
fn errors_say_the_path_and_the_reason_once() {
    let missing = "/nonexistent/vigil-rules";
    let out = vigil(&["rules", "--rules-dir", missing]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
    assert!(err.contains(missing), "{err}");
}

#[test]
fn bench_prints_its_figures() {
    let out = vigil(&["bench", "--iterations", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for figure in ["pipeline median", "artifacts/s", "baseline", "target"] {
        assert!(text.contains(figure), "{figure} missing:\n{text}");
    }
}

/// `vigil ingest`, `backup` and `restore` against a data directory of their own.
mod store {
    use super::*;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    fn models_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    fn command(data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
        c.args(args)
            .current_dir(std::env::temp_dir())
            .env("VIGIL__STORE__DATA_DIR", data)
            .env("VIGIL_MODELS_DIR", models_dir());
        c
    }

    /// `n` design documents of four sections each, different from one another.
    fn documents(dir: &Path, n: usize) {
        std::fs::create_dir_all(dir).unwrap();
        for i in 0..n {
            let text = format!(
                "# Service {i}\n\n## Overview\n\nThe service {i} API accepts orders for region {i} \
                 from the mobile app over the internet.\n\n## Storage\n\nThe service {i} API stores \
                 customer addresses in the orders {i} database. The orders {i} database is not \
                 encrypted at rest.\n\n## Admin\n\nOperators of team {i} use an admin console that \
                 calls the service {i} API over HTTP.\n\n## Jobs\n\nA nightly job {i} copies orders \
                 to the analytics {i} bucket.\n"
            );
            std::fs::write(dir.join(format!("doc-{i:03}.md")), text).unwrap();
        }
    }

    fn db(data: &Path) -> rusqlite::Connection {
        rusqlite::Connection::open(data.join("vigil.db")).unwrap()
    }

    fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// `f` with the data directory's memory open (as the service opens it).
    fn with_memory<T>(data: &Path, f: impl AsyncFnOnce(&vigil_store::Memory) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = vigil_store::DataDir::new(data);
            let ops = vigil_store::OpsStore::open(&dir, &Default::default(), &[])
                .await
                .unwrap();
            f(&vigil_store::Memory::new(ops, 384)).await
        })
    }

    fn decisions(data: &Path) -> usize {
        with_memory(data, async |m| m.decisions().await.unwrap().len())
    }

    /// SQLite intact, every LanceDB table readable, and every committed version complete in
    /// LanceDB (its row and all its chunks).
    fn assert_consistent(data: &Path) {
        let conn = db(data);
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(verdict, "ok");
        drop(conn);
        let report = with_memory(data, async |m| m.check().await.unwrap());
        assert!(report.versions > 0, "{report:?}");
        assert!(report.incomplete.is_empty(), "{report:?}");
        assert_eq!(report.complete, report.versions, "{report:?}");
    }

    #[test]
    fn doctor_names_a_version_without_its_review_and_ingest_reviews_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (docs, data) = (tmp.path().join("docs"), tmp.path().join("data"));
        documents(&docs, 2);
        let out = command(&data, &["ingest", path(&docs)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let doctor = || command(&data, &["doctor"]).output().unwrap();
        assert!(
            !stdout(&doctor()).contains("no review"),
            "{}",
            stdout(&doctor())
        );

        // As if the process stopped after memory committed the version, before its review.
        let conn = db(&data);
        let artifact: String = conn
            .query_row("SELECT artifact_id FROM srv_reviews LIMIT 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        for table in ["srv_findings", "srv_reviews", "review_versions"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE artifact_id = ?1"),
                [&artifact],
            )
            .unwrap();
        }
        drop(conn);
        let out = doctor();
        assert!(
            stdout(&out).contains(&format!(
                "1 artifact(s) whose latest version has no review (a submission cut off, or a \
                 snapshot taken during one): {artifact}"
            )),
            "{}",
            stdout(&out)
        );

        let out = command(&data, &["ingest", path(&docs)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stdout(&doctor()).contains("no review"));
        assert_eq!(
            count(
                &db(&data),
                &format!("SELECT count(*) FROM srv_reviews WHERE artifact_id = '{artifact}'")
            ),
            1
        );
    }

    #[test]
    fn a_killed_ingest_leaves_no_half_written_version_and_resumes() {
        let tmp = tempfile::tempdir().unwrap();
        let (docs, data) = (tmp.path().join("docs"), tmp.path().join("data"));
        documents(&docs, 40);

        let mut child = command(&data, &["ingest", path(&docs)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let stored = loop {
            std::thread::sleep(Duration::from_millis(50));
            let n = if data.join("vigil.db").exists() {
                rusqlite::Connection::open_with_flags(
                    data.join("vigil.db"),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .and_then(|c| c.query_row("SELECT count(*) FROM mem_versions", [], |r| r.get(0)))
                .unwrap_or(0i64)
            } else {
                0
            };
            if n >= 3 || Instant::now() > deadline {
                break n;
            }
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the ingest was still running when killed"
        );
        assert!(
            (3..40).contains(&stored),
            "{stored} versions stored before the kill"
        );
        assert_consistent(&data);

        let out = command(&data, &["ingest", path(&docs)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_consistent(&data);
        let conn = db(&data);
        assert_eq!(
            count(
                &conn,
                "SELECT count(DISTINCT artifact_id) FROM mem_versions"
            ),
            40
        );
        assert_eq!(count(&conn, "SELECT max(version) FROM mem_versions"), 1);
        // Searches see every document once, each at its one version.
        let hits = with_memory(&data, async |m| {
            let filter = vigil_store::SearchFilter::default();
            let v = vec![0.05; 384];
            m.search_chunks("orders database", &v, &filter, 200)
                .await
                .unwrap()
        });
        let artifacts: std::collections::HashSet<_> =
            hits.iter().map(|h| h.artifact_id.as_str()).collect();
        assert!(artifacts.len() >= 20, "{} artifacts found", artifacts.len());
        assert!(hits.iter().all(|h| h.version == 1));
        assert_eq!(count(&conn, "SELECT count(*) FROM review_versions"), 40);
        // The reviews are the service's: one latest review per artifact.
        assert_eq!(
            count(&conn, "SELECT count(*) FROM srv_reviews WHERE latest = 1"),
            40
        );
    }

    #[test]
    fn ingested_decisions_apply_to_the_documents_ingested_after_them() {
        let tmp = tempfile::tempdir().unwrap();
        let docs = tmp.path().join("docs");
        documents(&docs, 1);

        // What the rules raise on the document, without memory.
        let first = tmp.path().join("first");
        let out = command(&first, &["ingest", path(&docs)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let (rule, component): (String, String) = db(&first)
            .query_row(
                "SELECT f.rule, json_extract(b.finding_json, '$.element_name') FROM srv_findings f \
                 JOIN srv_finding_bodies b USING (artifact_id, fingerprint) \
                 ORDER BY f.score DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let raised = count(
            &db(&first),
            &format!("SELECT count(*) FROM srv_findings WHERE rule = '{rule}'"),
        );

        // The team marked that rule on that component a false positive before.
        let csv = tmp.path().join("decisions.csv");
        std::fs::write(
            &csv,
            format!(
                "id,kind,scope,rule,component,rationale\n\
                 d1,false_positive,rule_on_component,{rule},{component},handled by the platform\n"
            ),
        )
        .unwrap();
        let second = tmp.path().join("second");
        let out = command(&second, &["ingest", path(&csv), path(&docs)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let conn = db(&second);
        let dismissed = count(
            &conn,
            &format!(
                "SELECT count(*) FROM srv_findings WHERE rule = '{rule}' \
                 AND status = 'false_positive'"
            ),
        );
        assert!(
            dismissed >= 1 && dismissed <= raised,
            "{dismissed} of {raised}"
        );
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM srv_findings WHERE rule <> '{rule}' AND status <> 'open'"
                )
            ),
            0,
            "other rules stay open"
        );
    }

    #[test]
    fn decisions_are_ingested_and_a_snapshot_restores_them() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let csv = tmp.path().join("decisions.csv");
        std::fs::write(
            &csv,
            "id,kind,scope,fingerprint,link,external_key,rationale,context\n\
             d1,mitigated,finding,fp-1,PAY-412,PAY-412,tokenizing card data,Card numbers stored \
             in the ledger\n",
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&csv)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("1 decision(s)"), "{}", stdout(&out));
        // The same export again changes nothing; a changed row replaces the decision, and says so.
        let out = command(&data, &["ingest", path(&csv)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("0 decision(s) (0 replaced, 1 unchanged)"),
            "{}",
            stdout(&out)
        );
        assert!(!stderr(&out).contains("replaced"), "{}", stderr(&out));
        let edited = tmp.path().join("edited.csv");
        std::fs::write(
            &edited,
            std::fs::read_to_string(&csv)
                .unwrap()
                .replace("tokenizing card data", "tokenizing card data at the edge"),
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&edited)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("(1 replaced, 0 unchanged)"),
            "{}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains("1 decision(s) replaced the stored ones with the same id: d1"),
            "{}",
            stderr(&out)
        );
        assert_eq!(decisions(&data), 1);
        // A JSON export holding one id twice is refused whole.
        let twice = tmp.path().join("twice.json");
        std::fs::write(
            &twice,
            r#"[{"id":"j1","kind":"policy","scope":"pattern","rationale":"a"},
                {"id":"j1","kind":"policy","scope":"pattern","rationale":"b"}]"#,
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&twice)]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("decision 2 of the export: id `j1` is decision 1's as well"),
            "{}",
            stderr(&out)
        );
        assert_eq!(decisions(&data), 1);

        let snap = tmp.path().join("snap");
        let out = command(&data, &["backup", path(&snap)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("decisions v"), "{}", stdout(&out));
        // Refused: a snapshot inside the data directory, and a data directory that is not there
        // (which is not created).
        let inside = data.join("lance").join("snap");
        let out = command(&data, &["backup", path(&inside)]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("inside the data directory"),
            "{}",
            stderr(&out)
        );
        assert!(!inside.exists());
        let nowhere = tmp.path().join("no-such-data");
        let out = command(&nowhere, &["backup", path(&tmp.path().join("snap2"))])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing to back up"),
            "{}",
            stderr(&out)
        );
        assert!(!nowhere.exists() && !tmp.path().join("snap2").exists());
        // A decision made after the snapshot.
        let later = tmp.path().join("later.csv");
        std::fs::write(
            &later,
            "id,kind,scope,rationale\nd2,policy,pattern,no plain HTTP\n",
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&later)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(decisions(&data), 2);

        let out = command(&data, &["restore", path(&snap)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(decisions(&data), 1);

        // The replaced database is kept, named, and still holds what the snapshot does not.
        let kept = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("the database it replaced is kept at "))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no kept database in: {}", stdout(&out)));
        assert_eq!(kept.parent(), Some(data.as_path()));
        let kept_lance = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("the memory tables it replaced are kept at "))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no kept memory in: {}", stdout(&out)));
        assert!(kept_lance.join("decisions.lance").is_dir());
        let old = rusqlite::Connection::open(&kept).unwrap();
        assert_eq!(count(&old, "SELECT count(*) FROM mem_versions"), 0);
        let err = stderr(&out);
        assert!(
            err.contains("warning:") && err.contains("revoked since then are valid again"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_and_snapshots_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let csv = tmp.path().join("decisions.csv");
        std::fs::write(
            &csv,
            "id,kind,scope,rationale\nd1,policy,pattern,no plain HTTP\n",
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&csv)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(mode(&data), 0o700);
        for file in ["vigil.db", "vigil.lock"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&data.join("lance")), 0o700);
        let snap = tmp.path().join("snap");
        let out = command(&data, &["backup", path(&snap)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(mode(&snap), 0o700);
        assert_eq!(mode(&snap.join("vigil.db")), 0o600);

        // A data directory made under a loose umask is tightened when next opened.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("vigil.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = command(&data, &["ingest", path(&csv)]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));
    }

    #[test]
    fn a_bad_decision_row_fails_its_file_and_nothing_of_it_is_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let bad = [
            (
                "id,kind,scope,rationale\nd1,policy,pattern,ok\nd2,risk_accepted,pattern,fine\n",
                "CSV row 3: a risk_accepted decision needs `owner`",
            ),
            (
                "id,kind,scope,owner,approver,expires_on,rationale\n\
                 d1,risk_accepted,pattern,ana,bo,31/12/2027,fine\n",
                "CSV row 2: expires_on `31/12/2027` is not a date (YYYY-MM-DD)",
            ),
            (
                "id,kind,scope,component,rationale\nd1,policy,rule_on_component,api,x\n",
                "CSV row 2: a rule_on_component decision needs `rule`",
            ),
            (
                "id,kind,scope,rationale\nd1,false_positive,finding,x\n",
                "CSV row 2: a finding-scoped decision needs `fingerprint`",
            ),
        ];
        for (i, (text, message)) in bad.iter().enumerate() {
            let csv = tmp.path().join(format!("bad-{i}.csv"));
            std::fs::write(&csv, text).unwrap();
            let out = command(&data, &["ingest", path(&csv)]).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(stderr(&out).contains(message), "{}", stderr(&out));
        }
        let json = tmp.path().join("bad.json");
        std::fs::write(
            &json,
            r#"[{"id": "d1", "kind": "policy", "scope": "pattern", "rationale": "ok"},
                {"id": "d2", "kind": "risk_accepted", "scope": "pattern", "rationale": "x",
                 "owner": "ana", "approver": "bo"}]"#,
        )
        .unwrap();
        let out = command(&data, &["ingest", path(&json)]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("decision 2 of the export: a risk_accepted decision needs `expires_on`"),
            "{}",
            stderr(&out)
        );
        assert_eq!(decisions(&data), 0);
    }

    #[test]
    fn a_file_ingest_cannot_read_is_named_once() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty.md");
        std::fs::write(&empty, "").unwrap();
        let missing = tmp.path().join("missing.md");
        let out = command(
            &tmp.path().join("data"),
            &["ingest", path(&empty), path(&missing)],
        )
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        for (file, why) in [(&empty, "the file is empty"), (&missing, "os error 2")] {
            let line = err.lines().find(|l| l.contains(why)).unwrap_or_default();
            assert_eq!(line.matches(path(file)).count(), 1, "{err}");
            assert_eq!(line.matches(why).count(), 1, "{err}");
        }
    }
}
