//! What the server keeps, as traits: API tokens, the webhook inbox and the reviews with their
//! findings' workflow state. The SQLite operational store implements them durably (see
//! `sqlite.rs`); the in-memory implementations here serve tests (the review store in memory
//! keeps no versions, history or memory of decisions).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use utoipa::ToSchema;

use vigil_core::{Artifact, Review};
use vigil_store::lineage::FindingDiff;
pub use vigil_store::memory::ChunkHit;
use vigil_store::recall::FindingRecall;
pub use vigil_store::reviews::{
    ArtifactQuery, ArtifactSummary, ArtifactVersion, Dashboard, HistoryItem, VersionSummary,
};
pub use vigil_store::{Decision, DecisionKind, DecisionScope, SearchFilter};

use crate::auth::Role;
use crate::error::{Error, Result};

/// What a store operation returns: stores do their blocking I/O off the async runtime.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn ready<'a, T: Send + 'a>(value: Result<T>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// A stored API token: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenRecord {
    /// Short id (the first 12 hex digits of the hash), used to revoke it.
    pub id: String,
    /// What the token is for.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub hash: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// Revocation time, Unix milliseconds.
    pub revoked_ms: Option<u64>,
}

/// Where API tokens are kept.
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new token.
    fn insert(&self, record: &TokenRecord) -> StoreFuture<'_, ()>;
    /// The token with this hash, revoked or not.
    fn find_by_hash(&self, hash: &str) -> StoreFuture<'_, Option<TokenRecord>>;
    /// Every token, oldest first.
    fn list(&self) -> StoreFuture<'_, Vec<TokenRecord>>;
    /// Revokes a token; false when no active token has this id.
    fn revoke(&self, id: &str, now_ms: u64) -> StoreFuture<'_, bool>;
    /// The token with this id, revoked or not.
    fn find_by_id(&self, id: &str) -> StoreFuture<'_, Option<TokenRecord>>;
    /// Stores a new console session opened under a token.
    fn open_session(&self, session: &SessionRecord) -> StoreFuture<'_, ()>;
    /// The console session with this hash.
    fn session(&self, hash: &str) -> StoreFuture<'_, Option<SessionRecord>>;
    /// Records a use of a console session.
    fn touch_session(&self, hash: &str, now_ms: u64) -> StoreFuture<'_, ()>;
    /// Ends a console session; false when none has this hash.
    fn end_session(&self, hash: &str) -> StoreFuture<'_, bool>;
    /// Removes the console sessions last used before `idle_before_ms`; returns how many.
    fn purge_sessions(&self, idle_before_ms: u64) -> StoreFuture<'_, u64>;
}

/// A console session as stored: never the session secret, only its hash, with the API token it
/// was opened with (its role is the session's role, and revoking the token ends the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session secret, hex.
    pub hash: String,
    /// Id of the API token the session was opened with.
    pub token_id: String,
    /// Opening time, Unix milliseconds.
    pub created_ms: u64,
    /// Last use, Unix milliseconds.
    pub last_seen_ms: u64,
}

/// A verified webhook event on its way into the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Connector name from the path.
    pub connector: String,
    /// Tool name.
    pub tool: String,
    /// Delivery id the event is de-duplicated on (per connector).
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// The raw body, exactly as received.
    pub body: Vec<u8>,
    /// Arrival time, Unix milliseconds.
    pub received_ms: u64,
}

/// The inbox's answer to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored durably under this id.
    Accepted(i64),
    /// Already stored under this id; nothing new was written.
    Duplicate(i64),
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Waiting for a worker (possibly until a retry time).
    Pending,
    /// Claimed by a worker.
    Processing,
    /// Processed.
    Done,
    /// Failed every attempt; kept for an operator.
    Dead,
}

impl EventStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Processing => "processing",
            EventStatus::Done => "done",
            EventStatus::Dead => "dead",
        }
    }
}

/// An event in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    /// Inbox id.
    pub id: i64,
    /// Connector name.
    pub connector: String,
    /// Tool name.
    pub tool: String,
    /// Delivery id.
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// Raw body.
    pub body: Vec<u8>,
    /// Status.
    pub status: EventStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// What processing produced (a review id, or why nothing was reviewed).
    pub outcome: Option<String>,
    /// Arrival time, Unix milliseconds.
    pub received_ms: u64,
}

/// Events per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueDepth {
    /// Waiting.
    pub pending: u64,
    /// Being processed.
    pub processing: u64,
    /// Processed.
    pub done: u64,
    /// In the dead-letter list.
    pub dead: u64,
}

/// The durable webhook inbox and job queue.
pub trait InboxStore: Send + Sync + 'static {
    /// Stores events in one transaction that is on disk when this returns; an event whose
    /// (connector, delivery id) is already stored is not written again.
    fn enqueue_batch(&self, events: &[NewEvent]) -> StoreFuture<'_, Vec<Enqueued>>;
    /// Claims the oldest pending event due at `now_ms`, counting an attempt.
    fn claim(&self, now_ms: u64) -> StoreFuture<'_, Option<InboxEvent>>;
    /// Marks an event processed with its outcome.
    fn complete(&self, id: i64, outcome: &str) -> StoreFuture<'_, ()>;
    /// Records a failed attempt: pending again from `retry_at_ms`, or dead when None.
    fn fail(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> StoreFuture<'_, ()>;
    /// Puts events left claimed by a stopped process back to pending; returns how many.
    fn requeue_in_flight(&self) -> StoreFuture<'_, u64>;
    /// Puts a dead event back to pending with its attempts reset; false when it is not dead.
    fn revive(&self, id: i64) -> StoreFuture<'_, bool>;
    /// Events per status.
    fn depth(&self) -> StoreFuture<'_, QueueDepth>;
    /// Up to `limit` events with this status, newest first.
    fn list(&self, status: EventStatus, limit: usize) -> StoreFuture<'_, Vec<InboxEvent>>;
}

/// Workflow status of a finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Raised, not yet looked at.
    #[default]
    Open,
    /// Confirmed by a reviewer.
    Confirmed,
    /// Being worked on.
    InProgress,
    /// The design now addresses it.
    Mitigated,
    /// The risk is accepted.
    RiskAccepted,
    /// Not a real risk here.
    FalsePositive,
}

impl FindingStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Confirmed => "confirmed",
            FindingStatus::InProgress => "in_progress",
            FindingStatus::Mitigated => "mitigated",
            FindingStatus::RiskAccepted => "risk_accepted",
            FindingStatus::FalsePositive => "false_positive",
        }
    }
}

/// A comment left while triaging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TriageComment {
    /// Token name of the author.
    pub author: String,
    /// Text.
    pub text: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// The workflow state of one finding, kept across review versions by finding id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FindingState {
    /// Status.
    pub status: FindingStatus,
    /// Assignee.
    pub assignee: Option<String>,
    /// Comments, oldest first.
    pub comments: Vec<TriageComment>,
    /// Last change, Unix milliseconds.
    pub updated_ms: u64,
}

/// A change of a finding's workflow state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    /// New status.
    pub status: Option<FindingStatus>,
    /// New assignee (empty string clears it).
    pub assignee: Option<String>,
    /// A comment to add.
    pub comment: Option<String>,
}

/// A review as stored: where it came from and the analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReview {
    /// Review id: derived from the artifact id and its content hash, so the same content gives
    /// the same id (analysis is idempotent).
    pub id: String,
    /// `api` or `webhook:CONNECTOR`.
    pub source: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// The analysis.
    pub review: Review,
}

/// Filters over findings; every one given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingFilter {
    /// Severity: critical, high, medium, low, info.
    pub severity: Option<String>,
    /// Workflow status: open, confirmed, in_progress, mitigated, risk_accepted, false_positive.
    pub status: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// A framework the finding maps to: cwe, capec, attack, owasp_2021, owasp_2025, nist_csf,
    /// pci_dss, hipaa, soc2; or one id such as `CWE-319`.
    pub framework: Option<String>,
    /// Owning team.
    pub team: Option<String>,
    /// Project or repository.
    pub project: Option<String>,
    /// Source format (github, jira_v3, azure_devops, linear, markdown...).
    pub tool: Option<String>,
    /// Review id.
    pub review: Option<String>,
    /// Skip this many (default 0).
    pub offset: Option<usize>,
    /// At most this many (default 50, at most 500; 0 gives the total alone).
    pub limit: Option<usize>,
}

/// A finding with where it was found and its workflow state.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRecord {
    /// Review it belongs to.
    pub review_id: String,
    /// Artifact id.
    pub artifact: String,
    /// Artifact title.
    pub artifact_title: String,
    /// Source format of the artifact.
    pub tool: String,
    /// Project.
    pub project: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// The finding.
    pub finding: vigil_core::Finding,
    /// Workflow state.
    pub state: FindingState,
    /// What memory said about the finding when its review was recorded.
    pub recall: Option<FindingRecall>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Matching items in total.
    pub total: usize,
    /// This page.
    pub items: Vec<T>,
}

/// Reviews, their findings and the findings' workflow state.
pub trait ReviewStore: Send + Sync + 'static {
    /// Readies what searches read (the memory index) so the first query does not pay for it;
    /// the service is marked ready once it returns.
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Stores a review; storing the same id again changes nothing. True when it was new.
    fn put_review(&self, review: StoredReview) -> StoreFuture<'_, bool>;
    /// One review.
    fn review(&self, id: &str) -> StoreFuture<'_, Option<StoredReview>>;
    /// Reviews, newest first, with the latest of each artifact only.
    fn reviews(&self, offset: usize, limit: usize) -> StoreFuture<'_, Page<StoredReview>>;
    /// Findings of each artifact's latest review that match, highest score first.
    fn findings(&self, filter: &FindingFilter) -> StoreFuture<'_, Page<FindingRecord>>;
    /// One finding (in its artifact's latest review).
    fn finding(&self, id: &str) -> StoreFuture<'_, Option<FindingRecord>>;
    /// Changes a finding's workflow state.
    fn triage(
        &self,
        id: &str,
        change: &Triage,
        author: &str,
        now_ms: u64,
    ) -> StoreFuture<'_, FindingState>;

    /// Stores an analysed artifact version: its normalized text in memory, what memory recalls
    /// about its findings (decisions, patterns, precedents, feedback), then the review. A store
    /// without memory stores the review as analysed. The answer names the review the content is
    /// stored under: not always `review.id` (an artifact back at an earlier content is a new
    /// version with a review of its own).
    fn put_analysis(&self, review: StoredReview, artifact: Artifact) -> StoreFuture<'_, Analysed> {
        drop(artifact);
        let review_id = review.id.clone();
        Box::pin(async move {
            let stored = self.put_review(review).await?;
            Ok(Analysed { review_id, stored })
        })
    }

    /// The review versions of the artifact a review is about, oldest first; `None` for an
    /// unknown review.
    fn review_versions(&self, review_id: &str) -> StoreFuture<'_, Option<Vec<VersionSummary>>> {
        unsupported("review versions", review_id)
    }

    /// New, unchanged, changed and gone findings between two versions of the review's artifact;
    /// `None` when the review or a version is unknown.
    fn review_diff(
        &self,
        review_id: &str,
        from: u32,
        to: u32,
    ) -> StoreFuture<'_, Option<FindingDiff>> {
        let _ = (from, to);
        unsupported("review diffs", review_id)
    }

    /// A finding's workflow history, oldest first.
    fn finding_history(&self, id: &str) -> StoreFuture<'_, Vec<HistoryItem>> {
        unsupported("finding history", id)
    }

    /// Artifacts in memory (the latest version of each), most recently changed first.
    fn artifacts(&self, query: ArtifactQuery) -> StoreFuture<'_, Page<ArtifactSummary>> {
        let _ = query;
        unsupported("artifacts", "list")
    }

    /// One artifact's latest version.
    fn artifact(&self, id: &str) -> StoreFuture<'_, Option<ArtifactSummary>> {
        unsupported("artifacts", id)
    }

    /// An artifact's versions, oldest first.
    fn artifact_versions(&self, id: &str) -> StoreFuture<'_, Vec<ArtifactVersion>> {
        unsupported("artifact versions", id)
    }

    /// The normalized text of one artifact version.
    fn artifact_text(&self, id: &str, version: u32) -> StoreFuture<'_, Option<String>> {
        let _ = version;
        unsupported("artifact texts", id)
    }

    /// Stores a decision in memory; one made on a finding also sets that finding's status (with
    /// a comment by `author` and a history entry). Returns the finding's new state, if any.
    fn record_decision(
        &self,
        decision: Decision,
        author: &str,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<FindingState>> {
        let _ = (author, now_ms);
        unsupported("decisions", &decision.id)
    }

    /// Every decision in memory.
    fn decisions(&self) -> StoreFuture<'_, Vec<Decision>> {
        unsupported("decisions", "list")
    }

    /// Hybrid search over artifact chunks, findings and decisions.
    fn search(&self, query: SearchQuery) -> StoreFuture<'_, SearchHits> {
        unsupported("searchable memory", &query.text)
    }

    /// The dashboard's figures at `now_ms`, over the last `weeks` weeks.
    fn dashboard(&self, now_ms: u64, weeks: u32) -> StoreFuture<'_, Dashboard> {
        let _ = (now_ms, weeks);
        unsupported("dashboard figures", "dashboard")
    }
}

/// What [`ReviewStore::put_analysis`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    /// The review the analysed content is stored under.
    pub review_id: String,
    /// Whether a review was recorded (false: the same content was the artifact's latest).
    pub stored: bool,
}

/// A search of memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words or question.
    pub text: String,
    /// Team, project, tool and time filters, on passages, findings and decisions alike.
    pub filter: SearchFilter,
    /// At most this many of each kind.
    pub limit: usize,
    /// Which decision kinds (all when empty).
    pub decision_kinds: Vec<DecisionKind>,
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchHits {
    /// Artifact chunks (latest versions), best first.
    pub chunks: Vec<ChunkHit>,
    /// Findings of latest reviews, best first.
    pub findings: Vec<FindingRecord>,
    /// Decisions with their fused scores, best first.
    pub decisions: Vec<(Decision, f32)>,
}

/// The answer of a store that does not keep what was asked for.
fn unsupported<'a, T: Send + 'a>(what: &str, id: &str) -> StoreFuture<'a, T> {
    ready(Err(Error::Store(format!(
        "this store does not keep {what} (asked for `{id}`)"
    ))))
}

/// Tokens and console sessions in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryTokens(
    Mutex<Vec<TokenRecord>>,
    Mutex<HashMap<String, SessionRecord>>,
);

impl MemoryTokens {
    fn sync_insert(&self, record: &TokenRecord) -> Result<()> {
        lock(&self.0)?.push(record.clone());
        Ok(())
    }

    fn sync_find_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        Ok(lock(&self.0)?.iter().find(|r| r.id == id).cloned())
    }

    fn sync_touch_session(&self, hash: &str, now_ms: u64) -> Result<()> {
        if let Some(s) = lock(&self.1)?.get_mut(hash) {
            s.last_seen_ms = s.last_seen_ms.max(now_ms);
        }
        Ok(())
    }

    fn sync_purge_sessions(&self, idle_before_ms: u64) -> Result<u64> {
        let mut sessions = lock(&self.1)?;
        let before = sessions.len();
        sessions.retain(|_, s| s.last_seen_ms >= idle_before_ms);
        Ok((before - sessions.len()) as u64)
    }

    fn sync_find_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        Ok(lock(&self.0)?.iter().find(|r| r.hash == hash).cloned())
    }

    fn sync_list(&self) -> Result<Vec<TokenRecord>> {
        Ok(lock(&self.0)?.clone())
    }

    fn sync_revoke(&self, id: &str, now_ms: u64) -> Result<bool> {
        let mut tokens = lock(&self.0)?;
        let found = tokens
            .iter_mut()
            .find(|r| r.id == id && r.revoked_ms.is_none());
        Ok(found.map(|r| r.revoked_ms = Some(now_ms)).is_some())
    }
}

impl TokenStore for MemoryTokens {
    fn insert(&self, record: &TokenRecord) -> StoreFuture<'_, ()> {
        ready(self.sync_insert(record))
    }

    fn find_by_hash(&self, hash: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        ready(self.sync_find_by_hash(hash))
    }

    fn list(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        ready(self.sync_list())
    }

    fn revoke(&self, id: &str, now_ms: u64) -> StoreFuture<'_, bool> {
        ready(self.sync_revoke(id, now_ms))
    }

    fn find_by_id(&self, id: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        ready(self.sync_find_by_id(id))
    }

    fn open_session(&self, session: &SessionRecord) -> StoreFuture<'_, ()> {
        ready(lock(&self.1).map(|mut m| {
            m.insert(session.hash.clone(), session.clone());
        }))
    }

    fn session(&self, hash: &str) -> StoreFuture<'_, Option<SessionRecord>> {
        ready(lock(&self.1).map(|m| m.get(hash).cloned()))
    }

    fn touch_session(&self, hash: &str, now_ms: u64) -> StoreFuture<'_, ()> {
        ready(self.sync_touch_session(hash, now_ms))
    }

    fn end_session(&self, hash: &str) -> StoreFuture<'_, bool> {
        ready(lock(&self.1).map(|mut m| m.remove(hash).is_some()))
    }

    fn purge_sessions(&self, idle_before_ms: u64) -> StoreFuture<'_, u64> {
        ready(self.sync_purge_sessions(idle_before_ms))
    }
}

/// The inbox in memory (tests): the same semantics, nothing durable.
#[derive(Debug, Default)]
pub struct MemoryInbox(Mutex<MemoryInboxState>);

#[derive(Debug, Default)]
struct MemoryInboxState {
    events: BTreeMap<i64, (InboxEvent, u64)>,
    by_delivery: HashMap<(String, String), i64>,
}

impl MemoryInbox {
    fn sync_enqueue_batch(&self, events: &[NewEvent]) -> Result<Vec<Enqueued>> {
        let mut s = lock(&self.0)?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let key = (e.connector.clone(), e.delivery_id.clone());
            if let Some(id) = s.by_delivery.get(&key) {
                out.push(Enqueued::Duplicate(*id));
                continue;
            }
            let id = s.events.keys().next_back().map_or(1, |k| k + 1);
            let event = InboxEvent {
                id,
                connector: e.connector.clone(),
                tool: e.tool.clone(),
                delivery_id: e.delivery_id.clone(),
                event: e.event.clone(),
                body: e.body.clone(),
                status: EventStatus::Pending,
                attempts: 0,
                last_error: None,
                outcome: None,
                received_ms: e.received_ms,
            };
            s.events.insert(id, (event, 0));
            s.by_delivery.insert(key, id);
            out.push(Enqueued::Accepted(id));
        }
        Ok(out)
    }

    fn sync_claim(&self, now_ms: u64) -> Result<Option<InboxEvent>> {
        let mut s = lock(&self.0)?;
        let due = s
            .events
            .values_mut()
            .find(|(e, next)| e.status == EventStatus::Pending && *next <= now_ms);
        Ok(due.map(|(e, _)| {
            e.status = EventStatus::Processing;
            e.attempts += 1;
            e.clone()
        }))
    }

    fn sync_complete(&self, id: i64, outcome: &str) -> Result<()> {
        let mut s = lock(&self.0)?;
        let (e, _) = s.events.get_mut(&id).ok_or_else(|| missing(id))?;
        e.status = EventStatus::Done;
        e.outcome = Some(outcome.to_owned());
        Ok(())
    }

    fn sync_fail(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> Result<()> {
        let mut s = lock(&self.0)?;
        let (e, next) = s.events.get_mut(&id).ok_or_else(|| missing(id))?;
        e.last_error = Some(error.to_owned());
        match retry_at_ms {
            Some(at) => {
                e.status = EventStatus::Pending;
                *next = at;
            }
            None => e.status = EventStatus::Dead,
        }
        Ok(())
    }

    fn sync_requeue_in_flight(&self) -> Result<u64> {
        let mut s = lock(&self.0)?;
        let mut n = 0;
        for (e, _) in s.events.values_mut() {
            if e.status == EventStatus::Processing {
                e.status = EventStatus::Pending;
                n += 1;
            }
        }
        Ok(n)
    }

    fn sync_revive(&self, id: i64) -> Result<bool> {
        let mut s = lock(&self.0)?;
        match s.events.get_mut(&id) {
            Some((e, next)) if e.status == EventStatus::Dead => {
                e.status = EventStatus::Pending;
                e.attempts = 0;
                *next = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn sync_depth(&self) -> Result<QueueDepth> {
        let s = lock(&self.0)?;
        let mut d = QueueDepth::default();
        for (e, _) in s.events.values() {
            *match e.status {
                EventStatus::Pending => &mut d.pending,
                EventStatus::Processing => &mut d.processing,
                EventStatus::Done => &mut d.done,
                EventStatus::Dead => &mut d.dead,
            } += 1;
        }
        Ok(d)
    }

    fn sync_list(&self, status: EventStatus, limit: usize) -> Result<Vec<InboxEvent>> {
        let s = lock(&self.0)?;
        Ok(s.events
            .values()
            .rev()
            .filter(|(e, _)| e.status == status)
            .take(limit)
            .map(|(e, _)| e.clone())
            .collect())
    }
}

impl InboxStore for MemoryInbox {
    fn enqueue_batch(&self, events: &[NewEvent]) -> StoreFuture<'_, Vec<Enqueued>> {
        ready(self.sync_enqueue_batch(events))
    }

    fn claim(&self, now_ms: u64) -> StoreFuture<'_, Option<InboxEvent>> {
        ready(self.sync_claim(now_ms))
    }

    fn complete(&self, id: i64, outcome: &str) -> StoreFuture<'_, ()> {
        ready(self.sync_complete(id, outcome))
    }

    fn fail(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> StoreFuture<'_, ()> {
        ready(self.sync_fail(id, error, retry_at_ms))
    }

    fn requeue_in_flight(&self) -> StoreFuture<'_, u64> {
        ready(self.sync_requeue_in_flight())
    }

    fn revive(&self, id: i64) -> StoreFuture<'_, bool> {
        ready(self.sync_revive(id))
    }

    fn depth(&self) -> StoreFuture<'_, QueueDepth> {
        ready(self.sync_depth())
    }

    fn list(&self, status: EventStatus, limit: usize) -> StoreFuture<'_, Vec<InboxEvent>> {
        ready(self.sync_list(status, limit))
    }
}

fn missing(id: i64) -> Error {
    Error::NotFound {
        kind: "inbox event",
        id: id.to_string(),
    }
}

/// Reviews in memory: lost at restart.
#[derive(Debug, Default)]
pub struct MemoryReviews(Mutex<MemoryReviewState>);

#[derive(Debug, Default)]
struct MemoryReviewState {
    reviews: HashMap<String, StoredReview>,
    /// Artifact id -> its latest review id.
    latest: HashMap<String, String>,
    /// Order of arrival of the latest reviews, newest last.
    order: Vec<String>,
    states: HashMap<String, FindingState>,
}

impl MemoryReviewState {
    fn latest_reviews(&self) -> impl Iterator<Item = &StoredReview> {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.reviews.get(id))
            .filter(|r| self.latest.get(&r.review.artifact) == Some(&r.id))
    }

    fn record(&self, r: &StoredReview, f: &vigil_core::Finding) -> FindingRecord {
        FindingRecord {
            review_id: r.id.clone(),
            artifact: r.review.artifact.clone(),
            artifact_title: r.review.title.clone(),
            tool: r.review.format.as_str().to_owned(),
            project: r.review.meta.project.clone(),
            team: r.review.meta.team.clone(),
            finding: f.clone(),
            state: self.states.get(&f.id).cloned().unwrap_or_default(),
            recall: None,
        }
    }
}

impl MemoryReviews {
    fn sync_put_review(&self, review: StoredReview) -> Result<bool> {
        let mut s = lock(&self.0)?;
        if s.reviews.contains_key(&review.id) {
            return Ok(false);
        }
        s.latest
            .insert(review.review.artifact.clone(), review.id.clone());
        s.order.push(review.id.clone());
        s.reviews.insert(review.id.clone(), review);
        Ok(true)
    }

    fn sync_review(&self, id: &str) -> Result<Option<StoredReview>> {
        Ok(lock(&self.0)?.reviews.get(id).cloned())
    }

    fn sync_reviews(&self, offset: usize, limit: usize) -> Result<Page<StoredReview>> {
        let s = lock(&self.0)?;
        let all: Vec<&StoredReview> = s.latest_reviews().collect();
        Ok(Page {
            total: all.len(),
            items: all.into_iter().skip(offset).take(limit).cloned().collect(),
        })
    }

    fn sync_findings(&self, filter: &FindingFilter) -> Result<Page<FindingRecord>> {
        let s = lock(&self.0)?;
        let matcher = FindingMatcher::new(filter)?;
        let mut hits: Vec<(&StoredReview, &vigil_core::Finding)> = s
            .latest_reviews()
            .filter(|r| matcher.review_matches(r))
            .flat_map(|r| r.review.findings.iter().map(move |f| (r, f)))
            .filter(|(_, f)| matcher.finding_matches(f, s.states.get(&f.id)))
            .collect();
        let by_score = |a: &(&StoredReview, &vigil_core::Finding),
                        b: &(&StoredReview, &vigil_core::Finding)| {
            b.1.score
                .value
                .total_cmp(&a.1.score.value)
                .then_with(|| a.1.id.cmp(&b.1.id))
        };
        let (offset, limit) = page_bounds(filter.offset, filter.limit);
        let total = hits.len();
        // Only the findings up to the end of the page need ordering.
        let keep = offset.saturating_add(limit).min(total);
        if keep < total {
            hits.select_nth_unstable_by(keep, by_score);
            hits.truncate(keep);
        }
        hits.sort_by(by_score);
        Ok(Page {
            total,
            items: hits
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(r, f)| s.record(r, f))
                .collect(),
        })
    }

    fn sync_finding(&self, id: &str) -> Result<Option<FindingRecord>> {
        let s = lock(&self.0)?;
        let found = s.latest_reviews().find_map(|r| {
            r.review
                .findings
                .iter()
                .find(|f| f.id == id)
                .map(|f| (r, f))
        });
        Ok(found.map(|(r, f)| s.record(r, f)))
    }

    fn sync_triage(
        &self,
        id: &str,
        change: &Triage,
        author: &str,
        now_ms: u64,
    ) -> Result<FindingState> {
        let mut s = lock(&self.0)?;
        let exists = s
            .latest_reviews()
            .any(|r| r.review.findings.iter().any(|f| f.id == id));
        if !exists {
            return Err(Error::NotFound {
                kind: "finding",
                id: id.to_owned(),
            });
        }
        let state = s.states.entry(id.to_owned()).or_default();
        apply_triage(state, change, author, now_ms);
        Ok(state.clone())
    }
}

impl ReviewStore for MemoryReviews {
    fn put_review(&self, review: StoredReview) -> StoreFuture<'_, bool> {
        ready(self.sync_put_review(review))
    }

    fn review(&self, id: &str) -> StoreFuture<'_, Option<StoredReview>> {
        ready(self.sync_review(id))
    }

    fn reviews(&self, offset: usize, limit: usize) -> StoreFuture<'_, Page<StoredReview>> {
        ready(self.sync_reviews(offset, limit))
    }

    fn findings(&self, filter: &FindingFilter) -> StoreFuture<'_, Page<FindingRecord>> {
        ready(self.sync_findings(filter))
    }

    fn finding(&self, id: &str) -> StoreFuture<'_, Option<FindingRecord>> {
        ready(self.sync_finding(id))
    }

    fn triage(
        &self,
        id: &str,
        change: &Triage,
        author: &str,
        now_ms: u64,
    ) -> StoreFuture<'_, FindingState> {
        ready(self.sync_triage(id, change, author, now_ms))
    }
}

/// Applies a triage change to a state.
pub fn apply_triage(state: &mut FindingState, change: &Triage, author: &str, now_ms: u64) {
    if let Some(status) = change.status {
        state.status = status;
    }
    if let Some(assignee) = &change.assignee {
        state.assignee = Some(assignee.clone()).filter(|a| !a.is_empty());
    }
    if let Some(text) = change.comment.as_ref().filter(|t| !t.trim().is_empty()) {
        state.comments.push(TriageComment {
            author: author.to_owned(),
            text: text.clone(),
            at_ms: now_ms,
        });
    }
    state.updated_ms = now_ms;
}

/// Offset and limit of a page: 50 by default, at most 500.
pub fn page_bounds(offset: Option<usize>, limit: Option<usize>) -> (usize, usize) {
    // A limit of 0 asks for the total alone.
    (offset.unwrap_or(0), limit.unwrap_or(50).min(500))
}

/// A parsed [`FindingFilter`].
#[derive(Debug)]
pub struct FindingMatcher<'a> {
    filter: &'a FindingFilter,
    severity: Option<vigil_core::Severity>,
    status: Option<FindingStatus>,
}

impl<'a> FindingMatcher<'a> {
    /// Parses the filter's severity and status; unknown values are a bad request.
    pub fn new(filter: &'a FindingFilter) -> Result<FindingMatcher<'a>> {
        let severity = filter
            .severity
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| Error::BadRequest(format!("unknown severity `{s}`")))
            })
            .transpose()?;
        let status = filter
            .status
            .as_deref()
            .map(|s| {
                serde_json::from_value(serde_json::Value::String(s.to_owned()))
                    .map_err(|_| Error::BadRequest(format!("unknown status `{s}`")))
            })
            .transpose()?;
        Ok(FindingMatcher {
            filter,
            severity,
            status,
        })
    }

    /// Whether the review-level filters (team, project, tool, review) admit this review.
    pub fn review_matches(&self, r: &StoredReview) -> bool {
        let f = self.filter;
        let meta = &r.review.meta;
        f.review.as_ref().is_none_or(|id| *id == r.id)
            && f.tool
                .as_ref()
                .is_none_or(|t| t == r.review.format.as_str())
            && f.team
                .as_ref()
                .is_none_or(|t| meta.team.as_ref() == Some(t))
            && f.project
                .as_ref()
                .is_none_or(|p| meta.project.as_ref() == Some(p))
    }

    /// Whether the finding-level filters admit this finding in this state.
    pub fn finding_matches(&self, f: &vigil_core::Finding, state: Option<&FindingState>) -> bool {
        let status = state.map(|s| s.status).unwrap_or_default();
        self.severity.is_none_or(|s| f.score.severity == s)
            && self.status.is_none_or(|s| s == status)
            && self.filter.rule.as_ref().is_none_or(|r| *r == f.rule)
            && self
                .filter
                .framework
                .as_ref()
                .is_none_or(|fw| maps_to(f, fw))
    }
}

/// Whether a finding maps to a framework (by name) or cites one id.
fn maps_to(f: &vigil_core::Finding, framework: &str) -> bool {
    let refs = &f.frameworks;
    let named = match framework {
        "cwe" => Some(!f.cwe.is_empty()),
        "capec" => Some(!f.capec.is_empty()),
        "attack" => Some(!f.attack.is_empty()),
        "owasp_2021" => Some(!refs.owasp_2021.is_empty()),
        "owasp_2025" => Some(!refs.owasp_2025.is_empty()),
        "nist_csf" => Some(!refs.nist_csf.is_empty()),
        "pci_dss" => Some(!refs.pci_dss.is_empty()),
        "hipaa" => Some(!refs.hipaa.is_empty()),
        "soc2" => Some(!refs.soc2.is_empty()),
        _ => None,
    };
    if let Some(hit) = named {
        return hit;
    }
    let id = framework.to_ascii_uppercase();
    f.cwe.iter().any(|c| format!("CWE-{c}") == id)
        || f.capec.iter().any(|c| format!("CAPEC-{c}") == id)
        || f.attack.iter().any(|a| a.eq_ignore_ascii_case(framework))
        || [
            &refs.owasp_2021,
            &refs.owasp_2025,
            &refs.nist_csf,
            &refs.pci_dss,
            &refs.hipaa,
            &refs.soc2,
        ]
        .iter()
        .any(|list| list.iter().any(|x| x.eq_ignore_ascii_case(framework)))
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::Store("a store lock was poisoned".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(delivery: &str) -> NewEvent {
        NewEvent {
            connector: "gh".into(),
            tool: "github".into(),
            delivery_id: delivery.into(),
            event: "issues".into(),
            body: b"{}".to_vec(),
            received_ms: 1,
        }
    }

    #[test]
    fn memory_inbox_deduplicates_retries_and_dead_letters() {
        let inbox = MemoryInbox::default();
        let out = inbox
            .sync_enqueue_batch(&[event("a"), event("b"), event("a")])
            .unwrap();
        assert_eq!(
            out,
            [
                Enqueued::Accepted(1),
                Enqueued::Accepted(2),
                Enqueued::Duplicate(1)
            ]
        );
        let first = inbox.sync_claim(0).unwrap().unwrap();
        inbox.sync_fail(first.id, "boom", Some(100)).unwrap();
        let second = inbox.sync_claim(0).unwrap().unwrap();
        assert_eq!(second.id, 2);
        assert!(inbox.sync_claim(50).unwrap().is_none());
        let again = inbox.sync_claim(100).unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (1, 2));
        inbox.sync_fail(again.id, "boom", None).unwrap();
        inbox.sync_complete(second.id, "ok").unwrap();
        let depth = inbox.sync_depth().unwrap();
        assert_eq!((depth.done, depth.dead, depth.pending), (1, 1, 0));
        assert!(inbox.sync_revive(1).unwrap());
        assert_eq!(inbox.sync_depth().unwrap().pending, 1);
    }
}
