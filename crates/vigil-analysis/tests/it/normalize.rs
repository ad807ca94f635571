//! Integration tests: normalize. Each fixture is a small realistic input of one format; the
//! tests check detection, titles, keys, headings and that quotes map back to the original bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_analysis::normalize::{normalize, Limits};
use vigil_analysis::Error;
use vigil_core::{Artifact, SourceFormat};

fn fixture(name: &str) -> (String, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/normalize")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path.display().to_string(), bytes)
}

fn load(name: &str) -> (Vec<Artifact>, String) {
    let (origin, bytes) = fixture(name);
    let artifacts = normalize(&origin, &bytes, &Limits::default()).unwrap();
    (artifacts, String::from_utf8(bytes).unwrap())
}

fn one(name: &str) -> (Artifact, String) {
    let (mut artifacts, original) = load(name);
    assert_eq!(artifacts.len(), 1, "{name}");
    (artifacts.remove(0), original)
}

/// Finds `quote` in some section and checks the original bytes behind it contain `words`.
fn assert_quote(artifact: &Artifact, original: &str, quote: &str, words: &[&str]) {
    let (section, at) = artifact
        .sections
        .iter()
        .find_map(|s| s.text.find(quote).map(|at| (s, at)))
        .unwrap_or_else(|| panic!("{quote:?} not in {:#?}", artifact.sections));
    let range = section.original_range(at..at + quote.len());
    let behind = &original[range.clone()];
    for word in words {
        assert!(
            behind.contains(word),
            "{quote:?} maps to {range:?} = {behind:?}, lacking {word:?}"
        );
    }
}

fn headings(artifact: &Artifact) -> Vec<String> {
    artifact
        .sections
        .iter()
        .map(|s| s.heading_path.join(" > "))
        .collect()
}

#[test]
fn markdown_design_doc() {
    let (a, original) = one("design.md");
    assert_eq!(a.format, SourceFormat::Markdown);
    assert_eq!(a.title, "Parcel tracking portal");
    assert_eq!(a.id, "design");
    assert_eq!(
        headings(&a),
        [
            "Parcel tracking portal",
            "Parcel tracking portal > Components",
            "Parcel tracking portal > Components > Configuration"
        ]
    );
    assert!(a.sections[1]
        .text
        .contains("Browser. Customers use the tracking page"));
    assert!(a.sections[1]
        .text
        .contains("Postgres | addresses, phone numbers"));
    assert!(a.sections[2].text.contains("tls: false\nadmin_port: 9000"));
    assert_quote(&a, &original, "public web page", &["public web page"]);
    assert_quote(
        &a,
        &original,
        "load balancer & WAF",
        &["load balancer", "&amp;", "WAF"],
    );
    assert_quote(&a, &original, "admin_port: 9000", &["admin_port: 9000"]);
}

#[test]
fn html_page() {
    let (a, original) = one("page.html");
    assert_eq!(a.format, SourceFormat::Html);
    assert_eq!(a.title, "Clinic booking service");
    assert_eq!(
        headings(&a),
        ["Clinic booking service", "Clinic booking service > Data"]
    );
    let text: String = a.sections.iter().map(|s| s.text.as_str()).collect();
    assert!(!text.contains("alert") && !text.contains("color") && !text.contains("Ignored"));
    assert!(text.contains("Port | Use\n8443 | admin console"));
    assert_quote(
        &a,
        &original,
        "visits & pay deposits",
        &["visits &amp; pay"],
    );
    assert_quote(
        &a,
        &original,
        "Café — card numbers",
        &["Caf&eacute; &#8212; card"],
    );
    assert_quote(&a, &original, "records database", &["records database"]);
}

#[test]
fn confluence_storage_page() {
    let (a, original) = one("confluence.xhtml");
    assert_eq!(a.format, SourceFormat::ConfluenceStorage);
    assert_eq!(a.title, "Payroll export design");
    assert_eq!(
        headings(&a),
        ["Payroll export design", "Payroll export design > Flow"]
    );
    assert!(a.sections[0]
        .text
        .contains("Sensitive\nExports contain bank account numbers."));
    assert!(!a.sections[0].text.contains("true"));
    let flow = &a.sections[1].text;
    assert!(flow.contains("See SFTP runbook owned by ."), "{flow}");
    assert!(flow.contains("\"verify_host_key\": false") && !flow.contains("json"));
    assert_quote(&a, &original, "bank SFTP server", &["bank SFTP server"]);
    assert_quote(&a, &original, "SFTP runbook", &["SFTP runbook"]);
    assert_quote(
        &a,
        &original,
        "\"verify_host_key\": false",
        &["verify_host_key\": false"],
    );
}

#[test]
fn jira_v3_issue() {
    let (a, original) = one("jira_v3.json");
    assert_eq!(a.format, SourceFormat::JiraV3);
    assert_eq!(a.id, "PAY-42");
    assert_eq!(a.title, "Refund endpoint for \"partner\" merchants");
    assert_eq!(headings(&a), ["", "Context", "Acceptance"]);
    let meta = &a.meta;
    assert_eq!(meta.key.as_deref(), Some("PAY-42"));
    assert_eq!(
        meta.url.as_deref(),
        Some("https://acme.atlassian.net/browse/PAY-42")
    );
    assert_eq!(meta.project.as_deref(), Some("Payments"));
    assert_eq!(meta.team.as_deref(), Some("refunds"));
    assert_eq!(meta.item_type.as_deref(), Some("Story"));
    assert_eq!(meta.status.as_deref(), Some("In Progress"));
    assert_eq!(meta.priority.as_deref(), Some("High"));
    assert_eq!(meta.due_date.as_deref(), Some("2025-07-01"));
    assert_eq!(meta.sprint.as_deref(), Some("Sprint 12"));
    assert_eq!(meta.labels, ["api", "pci"]);
    assert_quote(
        &a,
        &original,
        "for \"partner\" merchants",
        &[r#"for \"partner\" merchants"#],
    );
    assert_quote(&a, &original, "POST /refunds", &["POST /refunds"]);
    assert_quote(
        &a,
        &original,
        "API key. Café owners",
        &[r"API key.\nCaf\u00e9 owners"],
    );
    assert_quote(
        &a,
        &original,
        "{\"max_refund\": 500}",
        &[r#"{\"max_refund\": 500}"#],
    );
}

#[test]
fn jira_v2_issue() {
    let (a, original) = one("jira_v2.json");
    assert_eq!(a.format, SourceFormat::JiraV2);
    assert_eq!(a.id, "OPS-77");
    assert_eq!(a.title, "Rotate the backup encryption keys");
    assert_eq!(headings(&a), ["", "Background", "Background > Steps"]);
    assert_eq!(a.meta.sprint.as_deref(), Some("Ops Sprint 9"));
    assert_eq!(
        a.meta.url.as_deref(),
        Some("https://jira.acme.internal/browse/OPS-77")
    );
    let steps = &a.sections[2].text;
    assert!(
        steps.contains("Generate a new key in the HSM\nRe-encrypt the manifest"),
        "{steps}"
    );
    assert!(
        steps.contains("Store | Retention\nS3 bucket | 30 days"),
        "{steps}"
    );
    assert!(
        steps.contains("backup-agent rotate --key \"new\""),
        "{steps}"
    );
    assert_quote(
        &a,
        &original,
        "object store via the backup agent",
        &["object store*", "the backup agent"],
    );
    assert_quote(&a, &original, "--key \"new\"", &[r#"--key \"new\""#]);
}

#[test]
fn jira_search_result() {
    let (artifacts, original) = load("jira_search.json");
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0].id, "WEB-1");
    assert_eq!(artifacts[1].id, "WEB-2");
    assert_eq!(artifacts[1].title, "Session cookie flags");
    assert!(artifacts.iter().all(|a| a.format == SourceFormat::JiraV3));
    assert_quote(
        &artifacts[0],
        &original,
        "per account and per IP",
        &["per account and per IP"],
    );
    assert_quote(
        &artifacts[1],
        &original,
        "Secure and HttpOnly",
        &["Secure and HttpOnly"],
    );
}

#[test]
fn github_issue() {
    let (a, original) = one("github_issue.json");
    assert_eq!(a.format, SourceFormat::GithubIssue);
    assert_eq!(a.id, "acme/notebook#57");
    assert_eq!(a.title, "Proposal: share notebooks by public link");
    assert_eq!(headings(&a), ["", "Summary", "Storage"]);
    assert_eq!(a.meta.labels, ["proposal", "sharing"]);
    assert_eq!(a.meta.project.as_deref(), Some("acme/notebook"));
    assert_quote(
        &a,
        &original,
        "embeds a \"share token\"",
        &[r#"embeds a \"share token\""#],
    );
    assert_quote(
        &a,
        &original,
        "Redis with no expiry",
        &["Redis with no expiry"],
    );
}

#[test]
fn github_pull_request() {
    let (a, original) = one("github_pr.json");
    assert_eq!(a.format, SourceFormat::GithubPullRequest);
    assert_eq!(a.id, "acme/notebook#58");
    assert_eq!(a.title, "Add webhook signature check");
    assert_eq!(headings(&a), ["", "", "Testing"]);
    assert_quote(
        &a,
        &original,
        "X-Hub-Signature-256",
        &["X-Hub-Signature-256"],
    );
    assert_quote(
        &a,
        &original,
        "replayed deliveries are rejected",
        &["replayed deliveries"],
    );
}

#[test]
fn azure_devops_work_item() {
    let (a, original) = one("ado_workitem.json");
    assert_eq!(a.format, SourceFormat::AzureDevopsWorkItem);
    assert_eq!(a.id, "#4182");
    assert_eq!(a.title, "Keyless unlock for renters");
    assert_eq!(headings(&a), ["", "Goal", "Acceptance criteria"]);
    let meta = &a.meta;
    assert_eq!(meta.team.as_deref(), Some("Wheelhop\\Mobility"));
    assert_eq!(meta.sprint.as_deref(), Some("Sprint 14"));
    assert_eq!(meta.due_date.as_deref(), Some("2025-06-30"));
    assert_eq!(meta.priority.as_deref(), Some("2"));
    assert_eq!(meta.labels, ["mobility", "security"]);
    assert_quote(&a, &original, "Bluetooth & LTE", &["Bluetooth &amp; LTE"]);
    assert_quote(
        &a,
        &original,
        "car's telematics unit",
        &["car&#39;s telematics unit"],
    );
    assert_quote(
        &a,
        &original,
        "expire after 15 minutes",
        &["15&nbsp;minutes"],
    );
}

#[test]
fn linear_issue() {
    let (a, original) = one("linear_issue.json");
    assert_eq!(a.format, SourceFormat::LinearIssue);
    assert_eq!(a.id, "ENG-42");
    assert_eq!(a.title, "Export audit log to customer S3 bucket");
    assert_eq!(headings(&a), ["", "Why", "How"]);
    assert_eq!(a.meta.team.as_deref(), Some("Platform"));
    assert_eq!(a.meta.sprint.as_deref(), Some("Cycle 31"));
    assert_eq!(a.meta.due_date.as_deref(), Some("2025-08-15"));
    assert_eq!(a.meta.labels, ["security"]);
    assert_quote(
        &a,
        &original,
        "cross-account IAM role",
        &["cross-account IAM role"],
    );
    assert_quote(
        &a,
        &original,
        "stored in settings",
        &["stored in `settings"],
    );
}

#[test]
fn linear_graphql_wrapper() {
    let (a, original) = one("linear_graphql.json");
    assert_eq!(a.format, SourceFormat::LinearIssue);
    assert_eq!(a.id, "ENG-43");
    assert_eq!(a.title, "Rotate webhook secrets");
    assert_eq!(headings(&a), ["", "", "Plan"]);
    assert_quote(&a, &original, "émitted once", &[r"\u00e9mitted once"]);
    assert_quote(&a, &original, "rotation endpoint", &["rotation endpoint"]);
}

fn error_of(bytes: &[u8]) -> Error {
    normalize("input", bytes, &Limits::default()).unwrap_err()
}

#[test]
fn bad_inputs_are_errors() {
    assert!(matches!(error_of(b""), Error::Empty { .. }));
    assert!(matches!(error_of(b" \n\t "), Error::Empty { .. }));
    assert!(matches!(
        error_of(b"ok\xff\xfe"),
        Error::InvalidUtf8 { offset: 2, .. }
    ));
    assert!(matches!(error_of(b"[1, 2, 3]"), Error::UnknownShape { .. }));
    assert!(matches!(
        error_of(b"{\"a\": 1}"),
        Error::UnknownShape { .. }
    ));
    assert!(matches!(error_of(b"<p>  </p>"), Error::NoText { .. }));
    let (_, jira) = fixture("jira_v3.json");
    let truncated = &jira[..jira.len() / 2];
    match error_of(truncated) {
        Error::InvalidJson { offset, .. } => assert_eq!(offset, truncated.len()),
        other => panic!("expected InvalidJson, got {other}"),
    }
    let small = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        normalize("big", b"0123456789ab", &small),
        Err(Error::TooLarge {
            size: 12,
            limit: 10,
            ..
        })
    ));
}

#[test]
fn malformed_adf_is_an_error_and_bad_nodes_are_skipped() {
    let not_doc = br#"{"key":"X-1","fields":{"summary":"S","description":{"type":"paragraph"}}}"#;
    assert!(matches!(error_of(not_doc), Error::Malformed { .. }));
    let bad_nodes =
        br#"{"key":"X-1","fields":{"summary":"Summary","description":{"type":"doc","content":[
        {"type":"paragraph","content":{"not":"an array"}},{"type":"text"},
        {"type":"paragraph","content":[{"type":"text","text":"kept"}]}]}}}"#;
    let artifacts = normalize("x", bad_nodes, &Limits::default()).unwrap();
    assert_eq!(artifacts[0].sections[1].text, "kept");
}

#[test]
fn deep_json_is_too_deep() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(matches!(
        error_of(deep.as_bytes()),
        Error::TooDeep { limit: 256, .. }
    ));
    let deep_object = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    assert!(matches!(
        error_of(deep_object.as_bytes()),
        Error::TooDeep { .. }
    ));
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    println!("{label}: {took:?}");
    // A guard against quadratic work (which takes minutes on these inputs), not a speed target:
    // the bound is loose because test machines are shared and their timings are noisy.
    assert!(took < Duration::from_secs(20), "{label} took {took:?}");
    out
}

#[test]
fn huge_html_is_fast() {
    let row = "<tr><td>Service &amp; <b>port</b></td><td>8443</td></tr>\n";
    let mut html = String::from("<h1>Big</h1><table>");
    while html.len() < 10 * 1024 * 1024 {
        html.push_str(row);
    }
    html.push_str("</table>");
    let artifacts = timed("10 MB HTML", || {
        normalize("big.html", html.as_bytes(), &Limits::default()).unwrap()
    });
    assert!(artifacts[0].word_count() > 500_000);
}

#[test]
fn deeply_nested_html_is_fast_and_bounded() {
    let depth = 100_000;
    let html = "<div>".repeat(depth) + "<p>deep text</p>" + &"</div>".repeat(depth);
    let err = timed("100k-deep HTML, default limit", || {
        normalize("deep.html", html.as_bytes(), &Limits::default())
    });
    assert!(matches!(err, Err(Error::TooDeep { .. })));
    let generous = Limits {
        max_depth: 1_000_000,
        ..Limits::default()
    };
    let artifacts = timed("100k-deep HTML, generous limit", || {
        normalize("deep.html", html.as_bytes(), &generous).unwrap()
    });
    assert_eq!(artifacts[0].sections[0].text, "deep text");
}

fn dev_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/eval/dev")
}

#[test]
fn dev_artifacts_normalize() {
    let dir = dev_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: no evaluation cases at {}", dir.display());
        return;
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let case = entry.path();
        let Ok(gold) = std::fs::read_to_string(case.join("gold.toml")) else {
            continue;
        };
        let kind = gold
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("kind = \"")
                    .and_then(|r| r.split('"').next())
            })
            .unwrap_or_default()
            .to_string();
        let expected = match kind.as_str() {
            "design-doc" => SourceFormat::Markdown,
            "jira-issue" => SourceFormat::JiraV3,
            "github-issue" => SourceFormat::GithubIssue,
            "ado-workitem" => SourceFormat::AzureDevopsWorkItem,
            "linear-issue" => SourceFormat::LinearIssue,
            "confluence-page" => SourceFormat::ConfluenceStorage,
            other => panic!("{}: unexpected kind {other}", case.display()),
        };
        let artifact = ["artifact.md", "artifact.json", "artifact.html"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{}: no artifact", case.display()));
        let bytes = std::fs::read(&artifact).unwrap();
        let origin = artifact.display().to_string();
        let artifacts = normalize(&origin, &bytes, &Limits::default()).unwrap();
        assert!(!artifacts.is_empty(), "{origin}");
        for a in &artifacts {
            assert_eq!(a.format, expected, "{origin}");
            assert!(a.word_count() >= 200, "{origin}: {} words", a.word_count());
            assert!(!a.title.is_empty(), "{origin}");
            // Every verbatim segment is a byte-for-byte copy of the original.
            for s in &a.sections {
                for seg in s.map.segments().iter().filter(|seg| seg.verbatim) {
                    let text = &s.text.as_bytes()[seg.text_start..seg.text_start + seg.text_len];
                    assert_eq!(text, &bytes[seg.orig_start..seg.orig_end], "{origin}");
                }
            }
        }
        seen += 1;
    }
    assert!(seen >= 14, "only {seen} cases in {}", dir.display());
}
