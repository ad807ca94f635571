//! `vigil serve` as a process on loopback: the first start prints an admin token once, the token
//! commands manage tokens in the same store, and the crash test: the server is killed with
//! SIGKILL while a bounded load generator posts signed webhooks; after a restart every event
//! that was acknowledged is stored (a redelivery is recognised as a duplicate) and processed,
//! none twice in the inbox and none lost; and the graceful stop: SIGTERM under load lets the
//! workers finish the events they hold, exits cleanly, and a restart processes what waits.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_server::loadgen::{self, LoadPlan};

const SECRET: &str = "crash-test-secret";

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound address")
}

fn write_config(dir: &Path, addr: SocketAddr) -> std::path::PathBuf {
    let config = format!(
        "[server]\nlisten = \"{addr}\"\nworkers = 2\nretry_base_ms = 100\n\
         [llm]\nmode = \"off\"\n\
         [store]\ndata_dir = \"{}\"\n\
         [connectors.gh]\ntool = \"github\"\nsecret = \"{SECRET}\"\n",
        dir.join("data").display()
    );
    let path = dir.join("vigil.toml");
    std::fs::write(&path, config).expect("config written");
    path
}

/// Starts `vigil serve`; returns the process and the admin token it printed, if any.
fn start(dir: &Path, config: &Path, addr: SocketAddr) -> (Child, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("serve.log"))
                .expect("log file"),
        )
        .spawn()
        .expect("vigil serve starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let token = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("vgl_"));
        let _ = tx.send(token);
    });
    wait_healthy(addr, &dir.join("serve.log"));
    // The token is printed before the service listens; a restart prints none.
    let token = rx.recv_timeout(Duration::from_millis(500)).ok().flatten();
    (child, token)
}

fn wait_healthy(addr: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, _)) = loadgen::request(addr, "GET", "/readyz", &[], b"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("vigil serve did not become ready on {addr}; its log:\n{log}");
}

fn get_json(addr: SocketAddr, token: &str, path: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, body) =
        loadgen::request(addr, "GET", path, &[("authorization", &auth)], b"").expect("answer");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

#[test]
fn first_start_prints_an_admin_token_and_tokens_are_managed_by_command() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = write_config(dir.path(), addr);
    let (mut server, token) = start(dir.path(), &config, addr);
    let admin = token.expect("first start prints an admin token");
    let tokens = get_json(addr, &admin, "/api/v1/tokens");
    assert_eq!(tokens[0]["role"], "admin");
    let (status, _) = loadgen::request(addr, "GET", "/api/v1/tokens", &[], b"").unwrap();
    assert_eq!(status, 401);

    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let created = cli(&["token", "create", "--name", "ci", "--role", "auditor"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(secret.starts_with("vgl_"));
    let reviews = get_json(addr, &secret, "/api/v1/reviews");
    assert_eq!(reviews["total"], 0);
    let listed = String::from_utf8_lossy(&cli(&["token", "list"]).stdout).into_owned();
    assert!(
        listed.contains("auditor") && !listed.contains(&secret[4..]),
        "{listed}"
    );
    let id = listed
        .lines()
        .find(|l| l.contains("auditor"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(cli(&["token", "revoke", &id]).status.success());
    let auth = format!("Bearer {secret}");
    let (status, _) = loadgen::request(
        addr,
        "GET",
        "/api/v1/reviews",
        &[("authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(status, 401);

    // A snapshot can be taken while the service runs; putting one back cannot.
    let snap = dir.path().join("snap.db");
    let backup = cli(&["backup", snap.to_str().unwrap()]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let refused = cli(&["restore", snap.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("in use"),
        "{stderr}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let restored = cli(&["restore", snap.to_str().unwrap()]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
}

#[test]
fn a_start_without_an_active_admin_token_prints_one() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = write_config(dir.path(), addr);
    // A connector token made before the first start does not stand in for an admin's.
    let created = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "token",
            "create",
            "--name",
            "jira",
            "--role",
            "connector",
            "--config",
        ])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(created.status.success());
    let (mut server, token) = start(dir.path(), &config, addr);
    let admin = token.expect("an admin token is printed");
    let tokens = get_json(addr, &admin, "/api/v1/tokens");
    assert_eq!(tokens.as_array().map(Vec::len), Some(2), "{tokens}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn missing_tls_files_stop_the_start_before_a_token_or_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = write_config(dir.path(), addr);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[server]\n",
        "[server]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        !stderr.contains("serving on") && stderr.contains("/nonexistent/cert.pem"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data/vigil.db").exists(),
        "nothing is created"
    );
}

#[test]
fn token_names_with_control_characters_or_over_100_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_addr());
    let create = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "token", "create", "--role", "auditor", "--name", name, "--config",
            ])
            .arg(&config)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for (name, why) in [
        ("ci\u{1b}[2J", "control characters"),
        (&"x".repeat(100_000), "at most 100 characters"),
    ] {
        let out = create(name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    assert!(create(&"x".repeat(100)).status.success());
}

#[test]
fn acknowledged_webhooks_survive_sigkill_and_are_processed_once() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = write_config(dir.path(), addr);
    let (mut server, token) = start(dir.path(), &config, addr);
    let admin = token.expect("first start prints an admin token");

    let plan = LoadPlan {
        addr,
        connector: "gh".to_owned(),
        secret: SECRET.to_owned(),
        clients: 8,
        // More than any machine acknowledges before the kill: the kill, not the plan, ends it.
        events: 1_000_000,
        max_duration: Duration::from_secs(60),
        delivery_prefix: "crash".to_owned(),
    };
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    let report = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run_counting(&plan, &stop, &acked));
        // SIGKILL mid-load, once the load is well under way: no graceful shutdown, no flush.
        let waiting = Instant::now();
        while acked.load(Ordering::Relaxed) < 150 && waiting.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill().unwrap();
        server.wait().unwrap();
        // Let the clients meet the dead server, then end the load.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(
        !report.acknowledged.is_empty(),
        "nothing acknowledged before the kill"
    );
    assert!(report.failed > 0, "the kill did not interrupt the load");

    let (mut server, token) = start(dir.path(), &config, addr);
    assert!(
        token.is_none(),
        "a restart must not create another admin token"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let depth = loop {
        let inbox = get_json(addr, &admin, "/api/v1/inbox");
        let depth = inbox["depth"].clone();
        if depth["pending"] == 0 && depth["processing"] == 0 {
            break depth;
        }
        assert!(Instant::now() < deadline, "inbox not drained: {depth}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // Every acknowledged event was stored before its 202: redelivering it is a duplicate.
    for delivery in &report.acknowledged {
        let n: u64 = delivery.trim_start_matches("crash-").parse().unwrap();
        let body = loadgen::issue_event(n);
        let signature = loadgen::sign(SECRET, &body);
        let headers = [
            ("content-type", "application/json"),
            ("x-github-event", "issues"),
            ("x-github-delivery", delivery.as_str()),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let (status, answer) =
            loadgen::request(addr, "POST", "/hooks/github/gh", &headers, &body).unwrap();
        assert_eq!(status, 202);
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            answer["duplicate"], true,
            "{delivery} was acknowledged but not stored"
        );
    }

    // Each stored event was processed to a review, none failed, none is waiting.
    let stored = depth["done"].as_u64().unwrap();
    assert!(stored >= report.acknowledged.len() as u64, "{depth}");
    assert_eq!(depth["dead"], 0, "{depth}");
    let done = get_json(addr, &admin, "/api/v1/inbox?status=done&limit=500");
    for event in done["events"].as_array().unwrap() {
        let outcome = event["outcome"].as_str().unwrap_or("");
        assert!(outcome.starts_with("reviews: "), "{event}");
    }
    eprintln!(
        "crash test: {} acknowledged before SIGKILL, {} stored, all processed",
        report.acknowledged.len(),
        stored
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Sends SIGTERM to `child` and waits for it to exit (at most `within`).
fn terminate(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "vigil serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_the_workers_and_a_restart_resumes_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = write_config(dir.path(), addr);
    let (mut server, token) = start(dir.path(), &config, addr);
    let admin = token.expect("first start prints an admin token");

    let plan = LoadPlan {
        addr,
        connector: "gh".to_owned(),
        secret: SECRET.to_owned(),
        clients: 4,
        events: 1_000_000,
        max_duration: Duration::from_secs(60),
        delivery_prefix: "term".to_owned(),
    };
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    let (report, status) = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run_counting(&plan, &stop, &acked));
        // SIGTERM while events arrive and the two workers are analysing.
        let waiting = Instant::now();
        while acked.load(Ordering::Relaxed) < 150 && waiting.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = terminate(&mut server, Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        (load.join().unwrap(), status)
    });
    assert!(status.success(), "vigil serve exited with {status}");
    assert!(
        report.acknowledged.len() >= 150,
        "{}",
        report.acknowledged.len()
    );

    // Drained: no event was left half-processed; what had not started waits in the inbox.
    let db = rusqlite::Connection::open(dir.path().join("data/vigil.db")).unwrap();
    let count = |status: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM inbox_events WHERE status = ?1",
            [status],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("processing"), 0, "a worker was cut off mid-event");
    let (done_before, pending_before) = (count("done"), count("pending"));
    drop(db);

    let (mut server, _) = start(dir.path(), &config, addr);
    let deadline = Instant::now() + Duration::from_secs(120);
    let depth = loop {
        let depth = get_json(addr, &admin, "/api/v1/inbox")["depth"].clone();
        if depth["pending"] == 0 && depth["processing"] == 0 {
            break depth;
        }
        assert!(Instant::now() < deadline, "inbox not drained: {depth}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stored = depth["done"].as_u64().unwrap();
    assert_eq!(depth["dead"], 0, "{depth}");
    assert_eq!(stored as i64, done_before + pending_before, "{depth}");
    assert!(stored >= report.acknowledged.len() as u64, "{depth}");
    eprintln!(
        "drain test: {} acknowledged, {done_before} processed before SIGTERM, {pending_before} \
         after the restart",
        report.acknowledged.len()
    );
    let status = terminate(&mut server, Duration::from_secs(60));
    assert!(status.success(), "vigil serve exited with {status}");
}
