//! The reviews the service serves, in the operational store: each review under its own id, the
//! findings of every artifact's latest review in one denormalised table the findings list is
//! filtered and paged on, and each finding's triage state (status, assignee, comments).
//!
//! A review is recorded through [`crate::workflow`] as well: it becomes the next review version
//! of its artifact there, with the finding diff and each finding's lineage history, so a
//! resubmitted artifact whose content changed is a new version of the same artifact's review.
//! Triage state is kept per (artifact, fingerprint) and follows a changed finding to its new
//! fingerprint; every status change is appended to the workflow history and counted as a
//! disposition of the rule for the feedback loop.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use vigil_core::{Finding, Review};

use crate::lineage::{self, FindingChange, FindingDiff};
use crate::migrate::Migration;
use crate::recall::FindingRecall;
use crate::workflow::{self, from_json, to_json, FindingStatus};
use crate::Result;

/// The served reviews' schema, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: "reviews/0001_served_reviews_findings_triage",
        sql: "
CREATE TABLE srv_reviews (
    id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    latest INTEGER NOT NULL
);
CREATE INDEX srv_reviews_by_latest ON srv_reviews (latest, created_ms);
CREATE INDEX srv_reviews_by_artifact ON srv_reviews (artifact_id, version);
CREATE TABLE srv_findings (
    artifact_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    review_id TEXT NOT NULL,
    artifact_title TEXT NOT NULL,
    rule TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    score REAL NOT NULL,
    status TEXT NOT NULL,
    team TEXT,
    project TEXT,
    tool TEXT NOT NULL,
    frameworks TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    due_ms INTEGER,
    PRIMARY KEY (artifact_id, fingerprint)
);
CREATE TABLE srv_finding_bodies (
    artifact_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    finding_json TEXT NOT NULL,
    recall_json TEXT,
    PRIMARY KEY (artifact_id, fingerprint)
);
CREATE INDEX srv_findings_by_score ON srv_findings (score DESC, fingerprint);
CREATE INDEX srv_findings_by_severity ON srv_findings (severity, score DESC);
CREATE INDEX srv_findings_by_status ON srv_findings (status, score DESC);
CREATE INDEX srv_findings_by_team ON srv_findings (team, score DESC);
CREATE INDEX srv_findings_by_project ON srv_findings (project, score DESC);
CREATE INDEX srv_findings_by_tool ON srv_findings (tool, score DESC);
CREATE INDEX srv_findings_by_rule ON srv_findings (rule, score DESC);
CREATE INDEX srv_findings_by_review ON srv_findings (review_id);
CREATE INDEX srv_findings_by_fingerprint ON srv_findings (fingerprint);
CREATE TABLE srv_triage (
    artifact_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    comments_json TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    resolved_ms INTEGER,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, fingerprint)
);",
    },
    Migration {
        id: "reviews/0002_finding_frameworks",
        // One row per framework name or id a latest finding maps to, ordered by score within each,
        // with the other filter columns beside it: a framework filter reads one range of this table
        // instead of scanning every finding for a token.
        sql: "
CREATE TABLE srv_finding_frameworks (
    token TEXT NOT NULL,
    score REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    artifact_id TEXT NOT NULL,
    review_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    team TEXT,
    project TEXT,
    tool TEXT NOT NULL,
    PRIMARY KEY (token, score DESC, fingerprint, artifact_id)
) WITHOUT ROWID;
CREATE INDEX srv_finding_frameworks_by_finding ON srv_finding_frameworks (artifact_id, fingerprint);
WITH RECURSIVE split(artifact_id, fingerprint, rest, token) AS (
    SELECT artifact_id, fingerprint, ltrim(frameworks), NULL FROM srv_findings
    UNION ALL
    SELECT artifact_id, fingerprint, ltrim(substr(rest, instr(rest, ' '))),
        substr(rest, 1, instr(rest, ' ') - 1)
    FROM split WHERE instr(rest, ' ') > 0
)
INSERT OR IGNORE INTO srv_finding_frameworks (token, score, fingerprint, artifact_id, review_id,
    rule, severity, status, team, project, tool)
SELECT s.token, f.score, f.fingerprint, f.artifact_id, f.review_id, f.rule, f.severity,
    f.status, f.team, f.project, f.tool
FROM split s JOIN srv_findings f ON f.artifact_id = s.artifact_id AND f.fingerprint = s.fingerprint
WHERE s.token IS NOT NULL AND s.token <> '';",
    },
];

/// The organisation whose disposition counts triage feeds (one per appliance today).
pub const DEFAULT_ORG: &str = "default";

/// Statuses that count as still open (raised, not yet resolved).
pub const OPEN_STATUSES: &[&str] = &["open", "confirmed", "in_progress"];

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// A review to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReview {
    /// Review id (derived from the artifact and its content by the caller).
    pub id: String,
    /// `api` or `webhook:CONNECTOR`.
    pub source: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// The analysis, after memory was consulted.
    pub review: Review,
    /// What memory said about each finding, in the review's order (empty when not consulted).
    pub recall: Vec<FindingRecall>,
}

/// A stored review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    /// Review id.
    pub id: String,
    /// Where it came from.
    pub source: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Its version among its artifact's reviews, from 1.
    pub version: u32,
    /// The analysis.
    pub review: Review,
}

/// A comment left while triaging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageNote {
    /// Who wrote it.
    pub author: String,
    /// Text.
    pub text: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A finding's triage state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageState {
    /// Status name (`open`, `confirmed`, `in_progress`, `mitigated`, `risk_accepted`,
    /// `false_positive`).
    pub status: String,
    /// Assignee.
    pub assignee: Option<String>,
    /// Comments, oldest first.
    pub comments: Vec<TriageNote>,
    /// Last change, Unix milliseconds.
    pub updated_ms: u64,
}

impl Default for TriageState {
    fn default() -> Self {
        TriageState {
            status: "open".to_owned(),
            assignee: None,
            comments: Vec::new(),
            updated_ms: 0,
        }
    }
}

/// A finding of an artifact's latest review with where it was found and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    /// Review it belongs to.
    pub review_id: String,
    /// Artifact id.
    pub artifact_id: String,
    /// Artifact title.
    pub artifact_title: String,
    /// Source format.
    pub tool: String,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// The finding.
    pub finding: Finding,
    /// Triage state.
    pub triage: TriageState,
    /// What memory said when the review was recorded.
    pub recall: Option<FindingRecall>,
}

/// Filters over the findings list; every one given must match. Values are already validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingQuery {
    /// Severity name.
    pub severity: Option<String>,
    /// Triage status name.
    pub status: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// Framework name (`cwe`, `owasp_2021`...) or one id (`CWE-319`).
    pub framework: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Source format.
    pub tool: Option<String>,
    /// Review id.
    pub review: Option<String>,
    /// Skip this many.
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Matching items in total.
    pub total: usize,
    /// This page.
    pub items: Vec<T>,
}

/// One review version of an artifact, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSummary {
    /// Review version, from 1.
    pub version: u32,
    /// Review id, when the service recorded it (reviews recorded by `vigil ingest` have none).
    pub review_id: Option<String>,
    /// Content hash of the analysed text.
    pub content_hash: String,
    /// When it was recorded (ISO 8601 UTC).
    pub created_at: String,
    /// Findings raised.
    pub findings: usize,
    /// New, unchanged, changed and gone findings against the version before.
    pub new: usize,
    /// See `new`.
    pub unchanged: usize,
    /// See `new`.
    pub changed: usize,
    /// See `new`.
    pub gone: usize,
}

/// One entry of a finding's history, with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryItem {
    /// Review version it happened in, when it came from a review.
    pub review_version: Option<u32>,
    /// `new`, `unchanged`, `changed`, `gone` or `status`.
    pub event: String,
    /// What happened.
    pub detail: String,
    /// When (ISO 8601 UTC).
    pub at: String,
}

/// Records a review unless its id is stored already (then returns `false`): the next review
/// version of its artifact (with diff and lineage history), the artifact's latest findings with
/// their triage state carried over, and the triage memory's recall set for findings not yet
/// triaged.
pub fn insert_review(tx: &Transaction<'_>, new: &NewReview) -> Result<bool> {
    let exists = tx
        .query_row("SELECT 1 FROM srv_reviews WHERE id = ?1", [&new.id], |_| {
            Ok(())
        })
        .optional()?
        .is_some();
    if exists {
        return Ok(false);
    }

    let artifact = new.review.artifact.clone();
    let artifact_version: u32 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM mem_artifacts WHERE artifact_id = ?1",
        [&artifact],
        |r| r.get(0),
    )?;
    let recorded = workflow::record_review_tx(tx, new.review.clone(), artifact_version)?;

    tx.execute(
        "UPDATE srv_reviews SET latest = 0 WHERE artifact_id = ?1",
        [&artifact],
    )?;
    tx.execute(
        "INSERT INTO srv_reviews (id, artifact_id, version, source, created_ms, latest) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        params![
            new.id,
            artifact,
            recorded.version,
            new.source,
            new.created_ms as i64
        ],
    )?;
    tx.execute(
        "DELETE FROM srv_findings WHERE artifact_id = ?1",
        [&artifact],
    )?;
    tx.execute(
        "DELETE FROM srv_finding_bodies WHERE artifact_id = ?1",
        [&artifact],
    )?;
    tx.execute(
        "DELETE FROM srv_finding_frameworks WHERE artifact_id = ?1",
        [&artifact],
    )?;
    carry_triage(tx, &artifact, &recorded.diff)?;
    for (i, finding) in new.review.findings.iter().enumerate() {
        let recall = new.recall.get(i).filter(|r| r.fingerprint == finding.id);
        let triage = settle_triage(tx, &artifact, finding, recall, new.created_ms)?;
        insert_finding(tx, new, finding, recall, &triage)?;
    }
    Ok(true)
}

/// Copies a replaced finding's triage state to the fingerprint that replaces it.
fn carry_triage(tx: &Transaction<'_>, artifact: &str, diff: &FindingDiff) -> Result<()> {
    for entry in &diff.entries {
        let Some(previous) = entry
            .previous
            .as_ref()
            .filter(|_| entry.change == FindingChange::Changed)
        else {
            continue;
        };
        tx.execute(
            "INSERT OR IGNORE INTO srv_triage (artifact_id, fingerprint, rule, status, assignee, \
             comments_json, first_seen_ms, resolved_ms, updated_ms) \
             SELECT artifact_id, ?3, rule, status, assignee, comments_json, first_seen_ms, \
             resolved_ms, updated_ms FROM srv_triage WHERE artifact_id = ?1 AND fingerprint = ?2",
            params![artifact, previous, entry.fingerprint],
        )?;
    }
    Ok(())
}

/// The triage row of a finding, created when missing, with what memory decided applied to a
/// finding nobody has triaged (and an expired acceptance reopened).
fn settle_triage(
    tx: &Transaction<'_>,
    artifact: &str,
    finding: &Finding,
    recall: Option<&FindingRecall>,
    now_ms: u64,
) -> Result<(TriageState, u64)> {
    let existing = load_triage(tx, artifact, &finding.id)?;
    let (mut state, first_seen) = existing.clone().unwrap_or_else(|| {
        (
            TriageState {
                updated_ms: now_ms,
                ..TriageState::default()
            },
            now_ms,
        )
    });
    if let Some(r) = recall {
        if let Some((status, note)) = recalled_status(&state.status, r) {
            state.status = status.to_owned();
            state.comments.push(TriageNote {
                author: "memory".to_owned(),
                text: note,
                at_ms: now_ms,
            });
            state.updated_ms = now_ms;
            workflow::history(tx, artifact, &finding.id, None, "status", &r.reason)?;
            set_workflow_status(tx, artifact, &finding.id, status)?;
        }
    }
    if existing.as_ref().map(|(s, _)| s) != Some(&state) {
        save_triage(tx, artifact, &finding.id, &finding.rule, &state, first_seen)?;
    }
    Ok((state, first_seen))
}

/// The status memory sets, if it changes the current one: only untriaged findings take a
/// decision; an expired acceptance reopens an accepted finding.
fn recalled_status(current: &str, r: &FindingRecall) -> Option<(&'static str, String)> {
    use crate::recall::Disposition;
    let untriaged = current == "open";
    match r.disposition {
        Disposition::Accepted if untriaged => Some(("risk_accepted", r.reason.clone())),
        Disposition::FalsePositive if untriaged => Some(("false_positive", r.reason.clone())),
        Disposition::Controlled if untriaged => Some(("mitigated", r.reason.clone())),
        Disposition::Reopened if current == "risk_accepted" => Some(("open", r.reason.clone())),
        _ => None,
    }
}

fn insert_finding(
    tx: &Transaction<'_>,
    new: &NewReview,
    f: &Finding,
    recall: Option<&FindingRecall>,
    (triage, first_seen): &(TriageState, u64),
) -> Result<()> {
    let review = &new.review;
    let recall_json = recall.map(to_json).transpose()?;
    let frameworks = framework_tokens(f);
    tx.execute(
        "INSERT OR REPLACE INTO srv_findings (artifact_id, fingerprint, review_id, artifact_title, \
         rule, title, severity, score, status, team, project, tool, frameworks, first_seen_ms, \
         due_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            review.artifact,
            f.id,
            new.id,
            review.title,
            f.rule,
            f.title,
            f.score.severity.as_str(),
            f.score.value,
            triage.status,
            review.meta.team,
            review.meta.project,
            review.format.as_str(),
            frameworks,
            *first_seen as i64,
            f.score
                .sla_days
                .map(|d| *first_seen as i64 + i64::from(d) * DAY_MS),
        ],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO srv_finding_bodies (artifact_id, fingerprint, finding_json, \
         recall_json) VALUES (?1, ?2, ?3, ?4)",
        params![review.artifact, f.id, to_json(f)?, recall_json],
    )?;
    let tokens: std::collections::BTreeSet<&str> = frameworks.split_whitespace().collect();
    let mut put = tx.prepare(
        "INSERT OR REPLACE INTO srv_finding_frameworks (token, score, fingerprint, artifact_id, \
         review_id, rule, severity, status, team, project, tool) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for token in tokens {
        put.execute(params![
            token,
            f.score.value,
            f.id,
            review.artifact,
            new.id,
            f.rule,
            f.score.severity.as_str(),
            triage.status,
            review.meta.team,
            review.meta.project,
            review.format.as_str(),
        ])?;
    }
    Ok(())
}

/// The frameworks a finding maps to, as ` name id id name id ` (lower case, spaces inside an id
/// replaced); each word is also a row of `srv_finding_frameworks`, where a filter finds it.
pub fn framework_tokens(f: &Finding) -> String {
    let refs = &f.frameworks;
    let mut out = String::from(" ");
    let mut push = |name: &str, ids: Vec<String>| {
        if ids.is_empty() {
            return;
        }
        out.push_str(name);
        out.push(' ');
        for id in ids {
            out.push_str(&framework_token(&id));
            out.push(' ');
        }
    };
    push("cwe", f.cwe.iter().map(|c| format!("CWE-{c}")).collect());
    push(
        "capec",
        f.capec.iter().map(|c| format!("CAPEC-{c}")).collect(),
    );
    push("attack", f.attack.clone());
    push("owasp_2021", refs.owasp_2021.clone());
    push("owasp_2025", refs.owasp_2025.clone());
    push("nist_csf", refs.nist_csf.clone());
    push("pci_dss", refs.pci_dss.clone());
    push("hipaa", refs.hipaa.clone());
    push("soc2", refs.soc2.clone());
    out
}

/// One framework name or id as it is matched in [`framework_tokens`].
pub fn framework_token(id: &str) -> String {
    id.trim().to_lowercase().replace(char::is_whitespace, "_")
}

fn load_triage(
    conn: &Connection,
    artifact: &str,
    fingerprint: &str,
) -> Result<Option<(TriageState, u64)>> {
    let row = conn
        .query_row(
            "SELECT status, assignee, comments_json, updated_ms, first_seen_ms FROM srv_triage \
             WHERE artifact_id = ?1 AND fingerprint = ?2",
            [artifact, fingerprint],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    row.map(|(status, assignee, comments, updated, first)| {
        Ok((
            TriageState {
                status,
                assignee,
                comments: from_json("triage comments", &comments)?,
                updated_ms: updated as u64,
            },
            first as u64,
        ))
    })
    .transpose()
}

fn save_triage(
    conn: &Connection,
    artifact: &str,
    fingerprint: &str,
    rule: &str,
    state: &TriageState,
    first_seen_ms: u64,
) -> Result<()> {
    let resolved = (!OPEN_STATUSES.contains(&state.status.as_str())).then_some(state.updated_ms);
    conn.execute(
        "INSERT INTO srv_triage (artifact_id, fingerprint, rule, status, assignee, comments_json, \
         first_seen_ms, resolved_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (artifact_id, fingerprint) DO UPDATE SET status = excluded.status, \
         assignee = excluded.assignee, comments_json = excluded.comments_json, \
         resolved_ms = CASE WHEN excluded.resolved_ms IS NULL THEN NULL \
         ELSE coalesce(srv_triage.resolved_ms, excluded.resolved_ms) END, \
         updated_ms = excluded.updated_ms",
        params![
            artifact,
            fingerprint,
            rule,
            state.status,
            state.assignee,
            to_json(&state.comments)?,
            first_seen_ms as i64,
            resolved.map(|v| v as i64),
            state.updated_ms as i64
        ],
    )?;
    Ok(())
}

/// Mirrors a triage status into the workflow's finding state (which knows fewer statuses).
fn set_workflow_status(
    conn: &Connection,
    artifact: &str,
    fingerprint: &str,
    status: &str,
) -> Result<()> {
    let mapped = match status {
        "risk_accepted" => FindingStatus::Accepted,
        "false_positive" => FindingStatus::FalsePositive,
        "mitigated" => FindingStatus::Mitigated,
        _ => FindingStatus::Open,
    };
    conn.execute(
        &format!(
            "UPDATE finding_state SET status = ?3, updated_at = {} \
             WHERE artifact_id = ?1 AND fingerprint = ?2",
            workflow::NOW
        ),
        params![artifact, fingerprint, mapped.as_str()],
    )?;
    Ok(())
}

/// The disposition a status counts as for the rule feedback loop, if any.
pub fn disposition_of(status: &str) -> Option<&'static str> {
    match status {
        "false_positive" => Some("false_positive"),
        "risk_accepted" => Some("accepted"),
        "mitigated" => Some("mitigated"),
        _ => None,
    }
}

/// Changes the triage state of the finding with this fingerprint (in its artifact's latest
/// review): `change` edits the state; a status change is appended to the finding's workflow
/// history, mirrored in its workflow state and counted as a disposition of its rule in `org`.
/// `None` when no latest review has the finding.
pub fn triage(
    tx: &Transaction<'_>,
    fingerprint: &str,
    org: &str,
    change: impl FnOnce(&mut TriageState),
) -> Result<Option<TriageState>> {
    let found: Option<(String, String, i64)> = tx
        .query_row(
            "SELECT artifact_id, rule, first_seen_ms FROM srv_findings WHERE fingerprint = ?1 \
             LIMIT 1",
            [fingerprint],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((artifact, rule, first_seen)) = found else {
        return Ok(None);
    };
    let before = load_triage(tx, &artifact, fingerprint)?
        .map(|(s, _)| s)
        .unwrap_or_default();
    let mut state = before.clone();
    change(&mut state);

    save_triage(tx, &artifact, fingerprint, &rule, &state, first_seen as u64)?;
    for table in ["srv_findings", "srv_finding_frameworks"] {
        tx.execute(
            &format!("UPDATE {table} SET status = ?3 WHERE artifact_id = ?1 AND fingerprint = ?2"),
            params![artifact, fingerprint, state.status],
        )?;
    }
    if state.status != before.status {
        let detail = format!("{} -> {}", before.status, state.status);
        workflow::history(tx, &artifact, fingerprint, None, "status", &detail)?;
        set_workflow_status(tx, &artifact, fingerprint, &state.status)?;
        if let Some(d) = disposition_of(&state.status) {
            workflow::count_disposition_in(tx, org, &rule, d)?;
        }
    }
    Ok(Some(state))
}

const REVIEW_COLUMNS: &str = "s.id, s.source, s.created_ms, s.version, v.review_json";

fn review_row(r: &Row<'_>) -> rusqlite::Result<(String, String, i64, u32, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn into_review(
    (id, source, created_ms, version, json): (String, String, i64, u32, String),
) -> Result<ReviewRow> {
    Ok(ReviewRow {
        id,
        source,
        created_ms: created_ms as u64,
        version,
        review: from_json("review", &json)?,
    })
}

/// One review by id.
pub fn review(conn: &Connection, id: &str) -> Result<Option<ReviewRow>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {REVIEW_COLUMNS} FROM srv_reviews s JOIN review_versions v \
                 ON v.artifact_id = s.artifact_id AND v.version = s.version WHERE s.id = ?1"
            ),
            [id],
            review_row,
        )
        .optional()?;
    row.map(into_review).transpose()
}

/// The latest review of each artifact, newest first.
pub fn latest_reviews(conn: &Connection, offset: usize, limit: usize) -> Result<Page<ReviewRow>> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM srv_reviews WHERE latest = 1",
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {REVIEW_COLUMNS} FROM srv_reviews s JOIN review_versions v \
         ON v.artifact_id = s.artifact_id AND v.version = s.version WHERE s.latest = 1 \
         ORDER BY s.created_ms DESC, s.rowid DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit as i64, offset as i64], review_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        total: total as usize,
        items: rows.into_iter().map(into_review).collect::<Result<_>>()?,
    })
}

/// The review ids of an artifact, oldest first, with their versions.
pub fn review_ids(conn: &Connection, artifact_id: &str) -> Result<Vec<(u32, String)>> {
    let mut stmt = conn
        .prepare("SELECT version, id FROM srv_reviews WHERE artifact_id = ?1 ORDER BY version")?;
    let rows = stmt
        .query_map([artifact_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The artifact a review is about.
pub fn artifact_of(conn: &Connection, review_id: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT artifact_id FROM srv_reviews WHERE id = ?1",
            [review_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Artifacts whose latest version in memory has no review: a submission cut off between the
/// two, or a snapshot taken in between. Empty where the review tables do not exist yet.
pub fn unreviewed_artifacts(conn: &Connection) -> Result<Vec<String>> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('mem_versions', 'review_versions')",
        [],
        |r| r.get(0),
    )?;
    if tables < 2 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT m.artifact_id FROM (SELECT artifact_id, max(version) AS v FROM mem_versions \
         GROUP BY artifact_id) m WHERE NOT EXISTS (SELECT 1 FROM review_versions r \
         WHERE r.artifact_id = m.artifact_id AND r.artifact_version = m.v) ORDER BY m.artifact_id",
    )?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// The id and content hash of an artifact's latest review.
pub fn latest_review_of(conn: &Connection, artifact_id: &str) -> Result<Option<(String, String)>> {
    let id: Option<String> = conn
        .query_row(
            "SELECT id FROM srv_reviews WHERE artifact_id = ?1 AND latest = 1",
            [artifact_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(review(conn, &id)?.map(|row| (id, row.review.content_hash)))
}

/// Every review version of an artifact, oldest first, with its diff counts.
pub fn versions(conn: &Connection, artifact_id: &str) -> Result<Vec<VersionSummary>> {
    let ids = review_ids(conn, artifact_id)?;
    let mut stmt = conn.prepare(
        "SELECT version, content_hash, created_at, review_json, diff_json FROM review_versions \
         WHERE artifact_id = ?1 ORDER BY version",
    )?;
    let rows = stmt
        .query_map([artifact_id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(version, content_hash, created_at, review, diff)| {
            let review: Review = from_json("review", &review)?;
            let diff: FindingDiff = from_json("finding diff", &diff)?;
            Ok(VersionSummary {
                version,
                review_id: ids
                    .iter()
                    .find(|(v, _)| *v == version)
                    .map(|(_, id)| id.clone()),
                content_hash,
                created_at,
                findings: review.findings.len(),
                new: diff.count(FindingChange::New),
                unchanged: diff.count(FindingChange::Unchanged),
                changed: diff.count(FindingChange::Changed),
                gone: diff.count(FindingChange::Gone),
            })
        })
        .collect()
}

/// New, unchanged, changed and gone findings between two review versions of an artifact; `None`
/// when either version does not exist.
pub fn diff(
    conn: &Connection,
    artifact_id: &str,
    from: u32,
    to: u32,
) -> Result<Option<FindingDiff>> {
    let load = |version: u32| -> Result<Option<Review>> {
        let json: Option<String> = conn
            .query_row(
                "SELECT review_json FROM review_versions WHERE artifact_id = ?1 AND version = ?2",
                params![artifact_id, version],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| from_json("review", &j)).transpose()
    };
    let (Some(before), Some(after)) = (load(from)?, load(to)?) else {
        return Ok(None);
    };
    Ok(Some(lineage::diff(&before.findings, &after.findings)))
}

/// A finding's workflow history, oldest first, by fingerprint (in its latest artifact).
pub fn finding_history(conn: &Connection, fingerprint: &str) -> Result<Vec<HistoryItem>> {
    let mut stmt = conn.prepare(
        "SELECT review_version, event, detail, at FROM finding_history WHERE fingerprint = ?1 \
         AND artifact_id = coalesce((SELECT artifact_id FROM srv_findings WHERE fingerprint = ?1 \
         LIMIT 1), artifact_id) ORDER BY id",
    )?;
    let rows = stmt
        .query_map([fingerprint], |r| {
            Ok(HistoryItem {
                review_version: r.get(0)?,
                event: r.get(1)?,
                detail: r.get(2)?,
                at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The findings query's conditions other than the framework, as SQL (joined by AND) over the
/// columns `srv_findings` and `srv_finding_frameworks` share, and their parameters.
fn conditions(q: &FindingQuery) -> (String, Vec<Value>) {
    let mut parts = vec!["1".to_owned()];
    let mut values = Vec::new();
    // A unary `+` keeps SQLite from walking an index of a column with few distinct values (a
    // tool matches most rows: visiting them through the index costs a lookup each).
    for (col, value) in [
        ("severity", &q.severity),
        ("status", &q.status),
        ("rule", &q.rule),
        ("team", &q.team),
        ("project", &q.project),
        ("+tool", &q.tool),
        ("review_id", &q.review),
    ] {
        if let Some(v) = value {
            parts.push(format!("{col} = ?"));
            values.push(Value::Text(v.clone()));
        }
    }
    (parts.join(" AND "), values)
}

const FINDING_COLUMNS: &str = "f.review_id, f.artifact_id, f.artifact_title, f.tool, f.team, \
    f.project, b.finding_json, b.recall_json, f.status, t.assignee, t.comments_json, t.updated_ms";

/// The joins that complete a finding row: its body and its triage state.
const FINDING_JOINS: &str = "JOIN srv_finding_bodies b \
    ON b.artifact_id = f.artifact_id AND b.fingerprint = f.fingerprint \
    LEFT JOIN srv_triage t ON t.artifact_id = f.artifact_id AND t.fingerprint = f.fingerprint";

fn finding_row(r: &Row<'_>) -> rusqlite::Result<RawFinding> {
    Ok(RawFinding {
        review_id: r.get(0)?,
        artifact_id: r.get(1)?,
        artifact_title: r.get(2)?,
        tool: r.get(3)?,
        team: r.get(4)?,
        project: r.get(5)?,
        finding: r.get(6)?,
        recall: r.get(7)?,
        status: r.get(8)?,
        assignee: r.get(9)?,
        comments: r.get(10)?,
        updated_ms: r.get(11)?,
    })
}

struct RawFinding {
    review_id: String,
    artifact_id: String,
    artifact_title: String,
    tool: String,
    team: Option<String>,
    project: Option<String>,
    finding: String,
    recall: Option<String>,
    status: String,
    assignee: Option<String>,
    comments: Option<String>,
    updated_ms: Option<i64>,
}

impl RawFinding {
    fn parse(self) -> Result<FindingRow> {
        Ok(FindingRow {
            review_id: self.review_id,
            artifact_id: self.artifact_id,
            artifact_title: self.artifact_title,
            tool: self.tool,
            team: self.team,
            project: self.project,
            finding: from_json("finding", &self.finding)?,
            triage: TriageState {
                status: self.status,
                assignee: self.assignee,
                comments: match &self.comments {
                    Some(c) => from_json("triage comments", c)?,
                    None => Vec::new(),
                },
                updated_ms: self.updated_ms.unwrap_or(0) as u64,
            },
            recall: self
                .recall
                .as_deref()
                .map(|r| from_json("recall", r))
                .transpose()?,
        })
    }
}

/// Findings of each artifact's latest review that match, highest score first.
pub fn findings(conn: &Connection, q: &FindingQuery) -> Result<Page<FindingRow>> {
    let (mut cond, mut values) = conditions(q);
    // With a framework, the framework table's range for that token, in score order, holds
    // every filter column: count and page read that range alone.
    let table = match &q.framework {
        Some(fw) => {
            cond = format!("token = ? AND {cond}");
            values.insert(0, Value::Text(framework_token(fw)));
            "srv_finding_frameworks"
        }
        None => "srv_findings",
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {table} WHERE {cond}"),
        params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {FINDING_COLUMNS} FROM (SELECT artifact_id, fingerprint FROM {table} \
         WHERE {cond} ORDER BY score DESC, fingerprint LIMIT {} OFFSET {}) p \
         CROSS JOIN srv_findings f ON f.artifact_id = p.artifact_id \
         AND f.fingerprint = p.fingerprint {FINDING_JOINS} \
         ORDER BY f.score DESC, f.fingerprint",
        q.limit, q.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(values.iter()), finding_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        total: total as usize,
        items: rows
            .into_iter()
            .map(RawFinding::parse)
            .collect::<Result<_>>()?,
    })
}

/// One finding of a latest review by fingerprint.
pub fn finding(conn: &Connection, fingerprint: &str) -> Result<Option<FindingRow>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {FINDING_COLUMNS} FROM srv_findings f {FINDING_JOINS} \
                 WHERE f.fingerprint = ?1 LIMIT 1"
            ),
            [fingerprint],
            finding_row,
        )
        .optional()?;
    row.map(RawFinding::parse).transpose()
}

/// An artifact in memory with its latest version and review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactSummary {
    /// Artifact id.
    pub artifact_id: String,
    /// Title of the latest version.
    pub title: String,
    /// Source format.
    pub tool: String,
    /// Key in its tool (PROJ-1, owner/repo#2).
    pub external_key: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Latest version, from 1.
    pub latest_version: u32,
    /// When the latest version was recorded, Unix milliseconds.
    pub updated_ms: i64,
    /// The latest review's id, when the service reviewed it.
    pub review_id: Option<String>,
}

/// One stored version of an artifact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactVersion {
    /// Version, from 1.
    pub version: u32,
    /// Title.
    pub title: String,
    /// SHA-256 of title and text.
    pub content_hash: String,
    /// When it was recorded, Unix milliseconds.
    pub created_ms: i64,
}

/// Filters over the artifacts list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactQuery {
    /// Source format.
    pub tool: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Skip this many.
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
}

const LATEST_ARTIFACT: &str = "a.version = (SELECT max(version) FROM mem_artifacts b \
    WHERE b.artifact_id = a.artifact_id)";

fn artifact_summary(r: &Row<'_>) -> rusqlite::Result<ArtifactSummary> {
    Ok(ArtifactSummary {
        artifact_id: r.get(0)?,
        title: r.get(1)?,
        tool: r.get(2)?,
        external_key: r.get(3)?,
        team: r.get(4)?,
        project: r.get(5)?,
        latest_version: r.get(6)?,
        updated_ms: r.get(7)?,
        review_id: r.get(8)?,
    })
}

const ARTIFACT_COLUMNS: &str = "a.artifact_id, a.title, a.tool, a.external_key, a.team, \
    a.project, a.version, a.created_at, (SELECT s.id FROM srv_reviews s \
    WHERE s.artifact_id = a.artifact_id AND s.latest = 1)";

/// The artifacts in memory (latest version of each), most recently changed first.
pub fn artifacts(conn: &Connection, q: &ArtifactQuery) -> Result<Page<ArtifactSummary>> {
    let mut parts = vec![LATEST_ARTIFACT.to_owned()];
    let mut values = Vec::new();
    for (col, value) in [
        ("tool", &q.tool),
        ("team", &q.team),
        ("project", &q.project),
    ] {
        if let Some(v) = value {
            parts.push(format!("a.{col} = ?"));
            values.push(Value::Text(v.clone()));
        }
    }
    let cond = parts.join(" AND ");
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM mem_artifacts a WHERE {cond}"),
        params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM mem_artifacts a WHERE {cond} \
         ORDER BY a.created_at DESC, a.artifact_id LIMIT {} OFFSET {}",
        q.limit, q.offset
    ))?;
    let items = stmt
        .query_map(params_from_iter(values.iter()), artifact_summary)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        total: total as usize,
        items,
    })
}

/// One artifact's latest version.
pub fn artifact(conn: &Connection, artifact_id: &str) -> Result<Option<ArtifactSummary>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {ARTIFACT_COLUMNS} FROM mem_artifacts a \
                 WHERE a.artifact_id = ?1 AND {LATEST_ARTIFACT}"
            ),
            [artifact_id],
            artifact_summary,
        )
        .optional()?)
}

/// An artifact's stored versions, oldest first.
pub fn artifact_versions(conn: &Connection, artifact_id: &str) -> Result<Vec<ArtifactVersion>> {
    let mut stmt = conn.prepare(
        "SELECT version, title, content_hash, created_at FROM mem_artifacts \
         WHERE artifact_id = ?1 ORDER BY version",
    )?;
    let rows = stmt
        .query_map([artifact_id], |r| {
            Ok(ArtifactVersion {
                version: r.get(0)?,
                title: r.get(1)?,
                content_hash: r.get(2)?,
                created_ms: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The normalized text of one artifact version.
pub fn artifact_text(conn: &Connection, artifact_id: &str, version: u32) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT text FROM mem_artifacts WHERE artifact_id = ?1 AND version = ?2",
            params![artifact_id, version],
            |r| r.get(0),
        )
        .optional()?)
}

/// Findings of latest reviews whose title, rule or artifact title hold the query's words, most
/// words first, then highest score; at most `limit`. `filter` narrows them to an artifact's
/// team, project and tool, and to findings first raised within its time range.
pub fn search_findings(
    conn: &Connection,
    text: &str,
    filter: &crate::SearchFilter,
    limit: usize,
) -> Result<Vec<FindingRow>> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| w.len() > 2)
        .map(|w| format!("%{}%", w.to_lowercase()))
        .take(8)
        .collect();
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let hay = "lower(f.title || ' ' || f.rule || ' ' || f.artifact_title)";
    let hits: Vec<String> = terms.iter().map(|_| format!("({hay} LIKE ?)")).collect();
    let (narrow, narrow_values) = narrowing(filter);
    let sql = format!(
        "SELECT {FINDING_COLUMNS} FROM srv_findings f {FINDING_JOINS} \
         WHERE ({any}){narrow} ORDER BY ({sum}) DESC, f.score DESC LIMIT {limit}",
        any = hits.join(" OR "),
        sum = hits.join(" + "),
    );
    let mut values: Vec<Value> = terms.iter().cloned().map(Value::Text).collect();
    values.extend(narrow_values);
    values.extend(terms.into_iter().map(Value::Text));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(values.iter()), finding_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(RawFinding::parse).collect()
}

/// The findings with the given artifact ids and fingerprints that `filter` admits (see
/// [`search_findings`]), in the order given; those not stored are left out.
pub fn findings_by_keys(
    conn: &Connection,
    keys: &[(String, String)],
    filter: &crate::SearchFilter,
) -> Result<Vec<FindingRow>> {
    let (narrow, narrow_values) = narrowing(filter);
    let mut stmt = conn.prepare(&format!(
        "SELECT {FINDING_COLUMNS} FROM srv_findings f {FINDING_JOINS} \
         WHERE f.artifact_id = ? AND f.fingerprint = ?{narrow}"
    ))?;
    let mut out = Vec::new();
    for (artifact, fingerprint) in keys {
        let mut values = vec![
            Value::Text(artifact.clone()),
            Value::Text(fingerprint.clone()),
        ];
        values.extend(narrow_values.iter().cloned());
        let row = stmt
            .query_row(params_from_iter(values.iter()), finding_row)
            .optional()?;
        if let Some(row) = row {
            out.push(RawFinding::parse(row)?);
        }
    }
    Ok(out)
}

/// `filter` as SQL terms over `srv_findings f` (each ` AND ...`) and their values: the
/// artifact's team, project and tool, and when the finding was first raised.
fn narrowing(filter: &crate::SearchFilter) -> (String, Vec<Value>) {
    let mut narrow = String::new();
    let mut values = Vec::new();
    for (column, value) in [
        ("f.team", &filter.team),
        ("f.project", &filter.project),
        ("f.tool", &filter.tool),
    ] {
        if let Some(v) = value {
            narrow.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Text(v.clone()));
        }
    }
    for (op, value) in [(">=", filter.since_ms), ("<", filter.until_ms)] {
        if let Some(t) = value {
            narrow.push_str(&format!(" AND f.first_seen_ms {op} ?"));
            values.push(Value::Integer(t));
        }
    }
    (narrow, values)
}

/// Figures of one team.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TeamFigures {
    /// Team (`unassigned` for artifacts without one).
    pub team: String,
    /// Open findings.
    pub open: u64,
    /// Open findings past their due date.
    pub sla_breaches: u64,
    /// Findings mitigated.
    pub mitigated: u64,
    /// Mean days from first raised to mitigated.
    pub mean_days_to_mitigation: Option<f64>,
}

/// Figures of one week.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WeekFigures {
    /// First day of the week (UTC, weeks counted from the epoch's Thursday), Unix milliseconds.
    pub week_start_ms: i64,
    /// Findings first raised that week.
    pub raised: u64,
    /// Findings mitigated that week.
    pub mitigated: u64,
}

/// The security posture at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dashboard {
    /// Artifacts known (in memory or reviewed).
    pub artifacts: u64,
    /// Artifacts with a review.
    pub reviewed: u64,
    /// `reviewed / artifacts` (1 when there are none).
    pub coverage: f64,
    /// Open findings (open, confirmed, in progress) of latest reviews by severity.
    pub open_by_severity: std::collections::BTreeMap<String, u64>,
    /// Open findings past their due date (first raised + the severity's SLA days).
    pub sla_breaches: u64,
    /// SLA breaches by severity.
    pub sla_breaches_by_severity: std::collections::BTreeMap<String, u64>,
    /// Findings mitigated.
    pub mitigated: u64,
    /// Mean days from first raised to mitigated.
    pub mean_days_to_mitigation: Option<f64>,
    /// The same figures per team.
    pub teams: Vec<TeamFigures>,
    /// Raised and mitigated per week, the last `weeks` weeks, oldest first.
    pub weeks: Vec<WeekFigures>,
}

/// Computes the dashboard at `now_ms` over the last `weeks` weeks.
pub fn dashboard(conn: &Connection, now_ms: i64, weeks: u32) -> Result<Dashboard> {
    let mut d = Dashboard::default();
    let open = OPEN_STATUSES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    (d.artifacts, d.reviewed) = conn.query_row(
        "SELECT (SELECT count(*) FROM (SELECT artifact_id FROM mem_artifacts UNION \
         SELECT artifact_id FROM reviews)), (SELECT count(*) FROM reviews)",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )?;
    d.coverage = if d.artifacts == 0 {
        1.0
    } else {
        d.reviewed as f64 / d.artifacts as f64
    };

    let mut stmt = conn.prepare(&format!(
        "SELECT coalesce(team, 'unassigned'), severity, count(*), \
         sum(due_ms IS NOT NULL AND due_ms < ?1) FROM srv_findings \
         WHERE status IN ({open}) GROUP BY 1, 2"
    ))?;
    let rows = stmt
        .query_map([now_ms], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, i64>(3)? as u64,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut teams: std::collections::BTreeMap<String, TeamFigures> = Default::default();
    for (team, severity, n, late) in rows {
        *d.open_by_severity.entry(severity.clone()).or_default() += n;
        if late > 0 {
            *d.sla_breaches_by_severity.entry(severity).or_default() += late;
        }
        d.sla_breaches += late;
        let t = teams.entry(team.clone()).or_default();
        t.team = team;
        t.open += n;
        t.sla_breaches += late;
    }

    let mut stmt = conn.prepare(
        "SELECT coalesce(f.team, 'unassigned'), count(*), avg(t.resolved_ms - t.first_seen_ms) \
         FROM srv_triage t JOIN srv_findings f \
         ON f.artifact_id = t.artifact_id AND f.fingerprint = t.fingerprint \
         WHERE t.status = 'mitigated' AND t.resolved_ms IS NOT NULL GROUP BY 1",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, Option<f64>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (mut sum, mut n) = (0.0, 0u64);
    for (team, count, mean) in rows {
        let t = teams.entry(team.clone()).or_default();
        t.team = team;
        t.mitigated = count;
        t.mean_days_to_mitigation = mean.map(|m| m / DAY_MS as f64);
        sum += mean.unwrap_or(0.0) * count as f64;
        n += count;
    }
    d.mitigated = n;
    d.mean_days_to_mitigation = (n > 0).then(|| sum / n as f64 / DAY_MS as f64);
    d.teams = teams.into_values().collect();
    d.weeks = weekly(conn, now_ms, weeks)?;
    Ok(d)
}

fn weekly(conn: &Connection, now_ms: i64, weeks: u32) -> Result<Vec<WeekFigures>> {
    let week = 7 * DAY_MS;
    let current = now_ms.div_euclid(week);
    let first = current - i64::from(weeks.max(1)) + 1;
    let mut out: Vec<WeekFigures> = (first..=current)
        .map(|w| WeekFigures {
            week_start_ms: w * week,
            ..WeekFigures::default()
        })
        .collect();
    let mut stmt = conn.prepare(
        "SELECT first_seen_ms / ?1, count(*) FROM srv_triage WHERE first_seen_ms >= ?2 GROUP BY 1",
    )?;
    let raised = stmt
        .query_map([week, first * week], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(
        "SELECT resolved_ms / ?1, count(*) FROM srv_triage WHERE status = 'mitigated' \
         AND resolved_ms >= ?2 GROUP BY 1",
    )?;
    let mitigated = stmt
        .query_map([week, first * week], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (w, n) in raised {
        if let Some(slot) = out.get_mut((w - first) as usize) {
            slot.raised = n as u64;
        }
    }
    for (w, n) in mitigated {
        if let Some(slot) = out.get_mut((w - first) as usize) {
            slot.mitigated = n as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_framework_table_is_filled_from_findings_stored_before_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut conn, &MIGRATIONS[..1]).unwrap();
        conn.execute(
            "INSERT INTO srv_findings (artifact_id, fingerprint, review_id, artifact_title, rule, \
             title, severity, score, status, team, project, tool, frameworks, first_seen_ms) \
             VALUES ('a', 'f1', 'r1', 'T', 'VGL-1', 't', 'high', 7.5, 'open', 'pay', NULL, \
             'markdown', ' cwe cwe-319 owasp_2021 a02:2021 ', 1)",
            [],
        )
        .unwrap();
        crate::migrate::apply(&mut conn, MIGRATIONS).unwrap();

        let rows: Vec<(String, f64, String, Option<String>)> = conn
            .prepare(
                "SELECT token, score, status, team FROM srv_finding_frameworks \
                 WHERE fingerprint = 'f1' ORDER BY token",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let tokens: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(tokens, ["a02:2021", "cwe", "cwe-319", "owasp_2021"]);
        assert!(rows
            .iter()
            .all(|r| r.1 == 7.5 && r.2 == "open" && r.3.as_deref() == Some("pay")));
    }
}
