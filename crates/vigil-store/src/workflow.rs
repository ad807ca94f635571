//! Reviews and their versions, finding workflow state and its history, jobs, connector cursors
//! and disposition counts: the operational store's own tables.
//!
//! A review is the analysis of one artifact; each analysis of a new artifact version is a new
//! review version, stored whole (as the JSON the report formats read) with the finding diff
//! against the version before it. Workflow state is kept per finding fingerprint, so it follows
//! a finding across versions; every change is appended to `finding_history`.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use vigil_core::Review;

use crate::lineage::{self, FindingChange, FindingDiff};
use crate::migrate::Migration;
use crate::ops::OpsStore;
use crate::{Error, Result};

/// The operational store's own schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: "ops/0001_reviews",
        sql: "
CREATE TABLE reviews (
    artifact_id TEXT PRIMARY KEY,
    latest_version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE review_versions (
    artifact_id TEXT NOT NULL REFERENCES reviews(artifact_id),
    version INTEGER NOT NULL,
    artifact_version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    review_json TEXT NOT NULL,
    diff_json TEXT NOT NULL,
    PRIMARY KEY (artifact_id, version)
);",
    },
    Migration {
        id: "ops/0002_finding_workflow",
        sql: "
CREATE TABLE finding_state (
    artifact_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (artifact_id, fingerprint)
);
CREATE TABLE finding_history (
    id INTEGER PRIMARY KEY,
    artifact_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    review_version INTEGER,
    event TEXT NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX finding_history_by_finding ON finding_history (artifact_id, fingerprint);",
    },
    Migration {
        id: "ops/0003_jobs_cursors_feedback",
        sql: "
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE connector_cursors (
    connector TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE rule_feedback (
    org TEXT NOT NULL,
    rule TEXT NOT NULL,
    disposition TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (org, rule, disposition)
);",
    },
];

/// SQLite's current time as ISO 8601 UTC with milliseconds.
pub(crate) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Where a finding stands in the security team's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Raised and waiting for triage or a fix.
    Open,
    /// Accepted as a risk (see the decision).
    Accepted,
    /// Judged a false positive.
    FalsePositive,
    /// Mitigated.
    Mitigated,
    /// Gone from the latest review because the design changed.
    Gone,
}

impl FindingStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Accepted => "accepted",
            FindingStatus::FalsePositive => "false_positive",
            FindingStatus::Mitigated => "mitigated",
            FindingStatus::Gone => "gone",
        }
    }

    fn parse(s: &str) -> Option<FindingStatus> {
        [
            FindingStatus::Open,
            FindingStatus::Accepted,
            FindingStatus::FalsePositive,
            FindingStatus::Mitigated,
            FindingStatus::Gone,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One stored review version.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewVersion {
    /// The artifact the review is about.
    pub artifact_id: String,
    /// Review version, from 1.
    pub version: u32,
    /// The artifact version it analysed.
    pub artifact_version: u32,
    /// The review itself.
    pub review: Review,
    /// What changed since the review version before it.
    pub diff: FindingDiff,
}

/// One entry of a finding's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Review version it happened in, when it came from a review.
    pub review_version: Option<u32>,
    /// `new`, `unchanged`, `changed`, `gone` or `status`.
    pub event: String,
    /// What happened, for people.
    pub detail: String,
}

/// A queued unit of background work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// What kind of work, e.g. `analyze`.
    pub kind: String,
    /// The work's parameters, usually JSON.
    pub payload: String,
    /// Times it was claimed.
    pub attempts: u32,
}

impl OpsStore {
    /// Records `review` as the next version of its artifact's review, with its diff against the
    /// previous version and the workflow history of every finding, in one transaction.
    pub async fn record_review(
        &self,
        review: Review,
        artifact_version: u32,
    ) -> Result<ReviewVersion> {
        self.transaction(move |tx| record_review_tx(tx, review, artifact_version))
            .await
    }

    /// The latest review version of an artifact.
    pub async fn latest_review(&self, artifact_id: &str) -> Result<Option<ReviewVersion>> {
        let id = artifact_id.to_owned();
        self.call(move |conn| {
            let row = conn
                .query_row(
                    "SELECT version, artifact_version, review_json, diff_json FROM review_versions \
                     WHERE artifact_id = ?1 ORDER BY version DESC LIMIT 1",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, u32>(0)?,
                            r.get::<_, u32>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(version, artifact_version, review, diff)| {
                Ok(ReviewVersion {
                    artifact_id: id.clone(),
                    version,
                    artifact_version,
                    review: from_json("review", &review)?,
                    diff: from_json("finding diff", &diff)?,
                })
            })
            .transpose()
        })
        .await
    }

    // TODO(feedback-counting): count the disposition (count_disposition) here when a status is
    // set, once the caller passes the organisation; today callers count it themselves.
    /// Sets a finding's workflow status and appends the change to its history.
    pub async fn set_finding_status(
        &self,
        artifact_id: &str,
        fingerprint: &str,
        status: FindingStatus,
        detail: &str,
    ) -> Result<()> {
        let (a, f, d) = (
            artifact_id.to_owned(),
            fingerprint.to_owned(),
            detail.to_owned(),
        );
        self.transaction(move |tx| {
            let n = tx.execute(
                &format!(
                    "UPDATE finding_state SET status = ?3, updated_at = {NOW} \
                     WHERE artifact_id = ?1 AND fingerprint = ?2"
                ),
                params![a, f, status.as_str()],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    kind: "finding",
                    id: format!("{a}/{f}"),
                });
            }
            history(
                tx,
                &a,
                &f,
                None,
                "status",
                &format!("{}: {d}", status.as_str()),
            )
        })
        .await
    }

    /// A finding's workflow status.
    pub async fn finding_status(
        &self,
        artifact_id: &str,
        fingerprint: &str,
    ) -> Result<Option<FindingStatus>> {
        let (a, f) = (artifact_id.to_owned(), fingerprint.to_owned());
        self.call(move |conn| {
            let s: Option<String> = conn
                .query_row(
                    "SELECT status FROM finding_state WHERE artifact_id = ?1 AND fingerprint = ?2",
                    [&a, &f],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(s.and_then(|s| FindingStatus::parse(&s)))
        })
        .await
    }

    /// A finding's history, oldest first.
    pub async fn finding_history(
        &self,
        artifact_id: &str,
        fingerprint: &str,
    ) -> Result<Vec<HistoryEntry>> {
        let (a, f) = (artifact_id.to_owned(), fingerprint.to_owned());
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT review_version, event, detail FROM finding_history \
                 WHERE artifact_id = ?1 AND fingerprint = ?2 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([&a, &f], |r| {
                    Ok(HistoryEntry {
                        review_version: r.get(0)?,
                        event: r.get(1)?,
                        detail: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Queues a job; returns its id.
    pub async fn enqueue_job(&self, kind: &str, payload: &str) -> Result<i64> {
        let (k, p) = (kind.to_owned(), payload.to_owned());
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO jobs (kind, payload, created_at, updated_at) \
                     VALUES (?1, ?2, {NOW}, {NOW})"
                ),
                [&k, &p],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Claims the oldest queued job (marks it running), if any.
    pub async fn claim_job(&self) -> Result<Option<Job>> {
        self.transaction(|tx| {
            let job = tx
                .query_row(
                    "SELECT id, kind, payload, attempts FROM jobs WHERE state = 'queued' \
                     ORDER BY id LIMIT 1",
                    [],
                    |r| {
                        Ok(Job {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            payload: r.get(2)?,
                            attempts: r.get::<_, u32>(3)? + 1,
                        })
                    },
                )
                .optional()?;
            if let Some(job) = &job {
                tx.execute(
                    &format!(
                        "UPDATE jobs SET state = 'running', attempts = attempts + 1, \
                         updated_at = {NOW} WHERE id = ?1"
                    ),
                    [job.id],
                )?;
            }
            Ok(job)
        })
        .await
    }

    /// Marks a claimed job done, or failed with the error (`Some`).
    pub async fn finish_job(&self, id: i64, error: Option<&str>) -> Result<()> {
        let error = error.map(str::to_owned);
        self.call(move |conn| {
            let state = if error.is_some() { "failed" } else { "done" };
            let n = conn.execute(
                &format!(
                    "UPDATE jobs SET state = ?2, last_error = ?3, updated_at = {NOW} WHERE id = ?1"
                ),
                params![id, state, error],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    kind: "job",
                    id: id.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Saves a connector's position (e.g. the last `updated` timestamp it read).
    pub async fn set_cursor(&self, connector: &str, cursor: &str) -> Result<()> {
        let (c, v) = (connector.to_owned(), cursor.to_owned());
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO connector_cursors (connector, cursor, updated_at) \
                     VALUES (?1, ?2, {NOW}) ON CONFLICT (connector) \
                     DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
                ),
                [&c, &v],
            )?;
            Ok(())
        })
        .await
    }

    /// A connector's saved position.
    pub async fn cursor(&self, connector: &str) -> Result<Option<String>> {
        let c = connector.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT cursor FROM connector_cursors WHERE connector = ?1",
                    [&c],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Counts one disposition (`false_positive`, `accepted`, `mitigated`) of a rule's finding in
    /// an organisation.
    pub async fn count_disposition(&self, org: &str, rule: &str, disposition: &str) -> Result<()> {
        let (o, r, d) = (org.to_owned(), rule.to_owned(), disposition.to_owned());
        self.call(move |conn| count_disposition_in(conn, &o, &r, &d))
            .await
    }

    /// Disposition counts of every rule in an organisation: `(rule, disposition, count)`.
    pub async fn dispositions(&self, org: &str) -> Result<Vec<(String, String, u32)>> {
        let o = org.to_owned();
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT rule, disposition, count FROM rule_feedback WHERE org = ?1 ORDER BY rule",
            )?;
            let rows = stmt
                .query_map([&o], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}

pub(crate) fn record_review_tx(
    tx: &Transaction<'_>,
    review: Review,
    artifact_version: u32,
) -> Result<ReviewVersion> {
    let id = review.artifact.clone();
    let previous: Option<(u32, String)> = tx
        .query_row(
            "SELECT version, review_json FROM review_versions WHERE artifact_id = ?1 \
             ORDER BY version DESC LIMIT 1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (version, before) = match previous {
        Some((v, json)) => (v + 1, from_json::<Review>("review", &json)?.findings),
        None => (1, Vec::new()),
    };
    let diff = lineage::diff(&before, &review.findings);

    tx.execute(
        &format!(
            "INSERT INTO reviews (artifact_id, latest_version, updated_at) VALUES (?1, ?2, {NOW}) \
             ON CONFLICT (artifact_id) DO UPDATE SET latest_version = excluded.latest_version, \
             updated_at = excluded.updated_at"
        ),
        params![id, version],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO review_versions (artifact_id, version, artifact_version, content_hash, \
             created_at, review_json, diff_json) VALUES (?1, ?2, ?3, ?4, {NOW}, ?5, ?6)"
        ),
        params![
            id,
            version,
            artifact_version,
            review.content_hash,
            to_json(&review)?,
            to_json(&diff)?
        ],
    )?;
    record_lineage(tx, &id, version, &diff, &review)?;

    Ok(ReviewVersion {
        artifact_id: id,
        version,
        artifact_version,
        review,
        diff,
    })
}

/// Brings `finding_state` and `finding_history` up to date with one review version's diff.
fn record_lineage(
    tx: &Transaction<'_>,
    artifact: &str,
    version: u32,
    diff: &FindingDiff,
    review: &Review,
) -> Result<()> {
    for entry in &diff.entries {
        let rule = review
            .findings
            .iter()
            .find(|f| f.id == entry.fingerprint)
            .map_or(entry.rule.as_str(), |f| f.rule.as_str());
        match entry.change {
            FindingChange::New | FindingChange::Changed => {
                // A changed finding keeps the status of the fingerprint it replaces.
                let inherited: Option<String> = match &entry.previous {
                    Some(prev) => tx
                        .query_row(
                            "SELECT status FROM finding_state \
                             WHERE artifact_id = ?1 AND fingerprint = ?2",
                            [artifact, prev],
                            |r| r.get(0),
                        )
                        .optional()?,
                    None => None,
                };
                let status = inherited.unwrap_or_else(|| FindingStatus::Open.as_str().to_owned());
                tx.execute(
                    &format!(
                        "INSERT INTO finding_state (artifact_id, fingerprint, rule, status, \
                         updated_at) VALUES (?1, ?2, ?3, ?4, {NOW}) \
                         ON CONFLICT (artifact_id, fingerprint) DO UPDATE SET \
                         status = excluded.status, updated_at = excluded.updated_at"
                    ),
                    params![artifact, entry.fingerprint, rule, status],
                )?;
            }
            FindingChange::Gone => {
                tx.execute(
                    &format!(
                        "UPDATE finding_state SET status = 'gone', updated_at = {NOW} \
                         WHERE artifact_id = ?1 AND fingerprint = ?2"
                    ),
                    params![artifact, entry.fingerprint],
                )?;
            }
            FindingChange::Unchanged => {}
        }
        history(
            tx,
            artifact,
            &entry.fingerprint,
            Some(version),
            entry.change.as_str(),
            &entry.detail,
        )?;
    }
    Ok(())
}

/// Counts one disposition of a rule's finding, inside the caller's connection or transaction.
pub(crate) fn count_disposition_in(
    conn: &rusqlite::Connection,
    org: &str,
    rule: &str,
    disposition: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO rule_feedback (org, rule, disposition, count) VALUES (?1, ?2, ?3, 1) \
         ON CONFLICT (org, rule, disposition) DO UPDATE SET count = count + 1",
        [org, rule, disposition],
    )?;
    Ok(())
}

pub(crate) fn history(
    tx: &Transaction<'_>,
    artifact: &str,
    fingerprint: &str,
    version: Option<u32>,
    event: &str,
    detail: &str,
) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO finding_history (artifact_id, fingerprint, review_version, event, detail, \
             at) VALUES (?1, ?2, ?3, ?4, ?5, {NOW})"
        ),
        params![artifact, fingerprint, version, event, detail],
    )?;
    Ok(())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Invalid {
        what: "record",
        reason: e.to_string(),
    })
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(what: &'static str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::Invalid {
        what,
        reason: e.to_string(),
    })
}
