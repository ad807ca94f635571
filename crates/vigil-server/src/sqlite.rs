//! The stores backed by the operational store (vigil-store's SQLite file, WAL mode,
//! `synchronous = FULL`): API tokens, the webhook inbox, and the reviews with their versions,
//! findings, triage state and history are durable there. Every write is one transaction,
//! committed (fsynced) before the caller is answered.
//!
//! Before a review is stored, memory is consulted (`vigil_store::recall`): decisions and
//! approved patterns apply, precedents come back, the organisation's feedback adjusts scores.
//! Without an embedder loaded, texts embed as zero vectors, so only what needs no meaning
//! applies: a decision on the same fingerprint and a rule-on-component decision (by component
//! name); patterns and precedents, which need similarity, do not.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_analysis::score::SeverityBands;
use vigil_core::Artifact;
use vigil_store::lineage::FindingDiff;
use vigil_store::recall::{self, FindingRecall, RecallConfig, RecallContext};
use vigil_store::reviews::{self, FindingQuery, FindingRow, NewReview, TriageNote, TriageState};
use vigil_store::{
    inbox, sessions, tokens, ArtifactRecord, DataDir, Memory, OpsOptions, OpsStore, PutOutcome,
    TextEmbedder,
};

use crate::app::{now_ms, Stores};
use crate::error::{Error, Result};
use crate::store::{
    apply_triage, Analysed, ArtifactQuery, ArtifactSummary, ArtifactVersion, Dashboard, Decision,
    DecisionKind, DecisionScope, Enqueued, EventStatus, FindingFilter, FindingMatcher,
    FindingRecord, FindingState, FindingStatus, HistoryItem, InboxEvent, InboxStore, NewEvent,
    Page, QueueDepth, ReviewStore, SearchHits, SearchQuery, SessionRecord, StoreFuture,
    StoredReview, TokenRecord, TokenStore, Triage, TriageComment, VersionSummary,
};

impl From<vigil_store::Error> for Error {
    fn from(e: vigil_store::Error) -> Error {
        Error::Store(e.to_string())
    }
}

/// Dimensions of memory's vectors when no embedder is loaded (those of the default embedder,
/// so a store written without one stays readable with it).
pub const DEFAULT_DIMENSIONS: usize = 384;

/// How reviews consult memory before they are stored.
#[derive(Clone, Default)]
pub struct RecallSetup {
    /// The sentence embedder; without one, texts embed as zero vectors (see the module docs).
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    /// Thresholds (`[memory]`).
    pub config: RecallConfig,
    /// Severity bands, to re-band a score feedback lowered.
    pub bands: SeverityBands,
}

impl std::fmt::Debug for RecallSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecallSetup")
            .field("embedder", &self.embedder.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Opens the operational store in `data_dir` (waiting up to `busy_timeout` for a lock another
/// process holds) and the stores over it, consulting memory with the default thresholds and no
/// embedder.
pub async fn open_stores(data_dir: &Path, busy_timeout: Duration) -> Result<Stores> {
    open_stores_with(data_dir, busy_timeout, RecallSetup::default()).await
}

/// [`open_stores`] with an embedder and thresholds for memory.
pub async fn open_stores_with(
    data_dir: &Path,
    busy_timeout: Duration,
    recall: RecallSetup,
) -> Result<Stores> {
    let options = OpsOptions { busy_timeout };
    let ops = OpsStore::open(&DataDir::new(data_dir), &options, &[]).await?;
    Ok(Stores {
        tokens: Arc::new(SqliteTokens(ops.clone())),
        inbox: Arc::new(SqliteInbox(ops.clone())),
        reviews: Arc::new(SqliteReviews::new(ops, recall)),
    })
}

/// API tokens in the operational store.
#[derive(Debug, Clone)]
pub struct SqliteTokens(pub OpsStore);

fn token_record(row: tokens::TokenRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        role: row
            .role
            .parse()
            .map_err(|_| Error::Store(format!("token {} has an unknown role", row.id)))?,
        id: row.id,
        name: row.name,
        hash: row.hash,
        created_ms: row.created_ms,
        revoked_ms: row.revoked_ms,
    })
}

impl TokenStore for SqliteTokens {
    fn insert(&self, record: &TokenRecord) -> StoreFuture<'_, ()> {
        let row = tokens::TokenRow {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role.as_str().to_owned(),
            hash: record.hash.clone(),
            created_ms: record.created_ms,
            revoked_ms: record.revoked_ms,
        };
        Box::pin(async move { Ok(self.0.call(move |c| tokens::insert(c, &row)).await?) })
    }

    fn find_by_hash(&self, hash: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        let hash = hash.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| tokens::find_by_hash(c, &hash)).await?;
            row.map(token_record).transpose()
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        Box::pin(async move {
            let rows = self.0.call(|c| tokens::list(c)).await?;
            rows.into_iter().map(token_record).collect()
        })
    }

    fn revoke(&self, id: &str, now_ms: u64) -> StoreFuture<'_, bool> {
        let id = id.to_owned();
        Box::pin(async move { Ok(self.0.call(move |c| tokens::revoke(c, &id, now_ms)).await?) })
    }

    fn find_by_id(&self, id: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        let id = id.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| tokens::find_by_id(c, &id)).await?;
            row.map(token_record).transpose()
        })
    }

    fn open_session(&self, session: &SessionRecord) -> StoreFuture<'_, ()> {
        let row = sessions::SessionRow {
            hash: session.hash.clone(),
            token_id: session.token_id.clone(),
            created_ms: session.created_ms,
            last_seen_ms: session.last_seen_ms,
        };
        Box::pin(async move { Ok(self.0.call(move |c| sessions::insert(c, &row)).await?) })
    }

    fn session(&self, hash: &str) -> StoreFuture<'_, Option<SessionRecord>> {
        let hash = hash.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| sessions::find(c, &hash)).await?;
            Ok(row.map(|r| SessionRecord {
                hash: r.hash,
                token_id: r.token_id,
                created_ms: r.created_ms,
                last_seen_ms: r.last_seen_ms,
            }))
        })
    }

    fn touch_session(&self, hash: &str, now_ms: u64) -> StoreFuture<'_, ()> {
        let hash = hash.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| sessions::touch(c, &hash, now_ms))
                .await?)
        })
    }

    fn end_session(&self, hash: &str) -> StoreFuture<'_, bool> {
        let hash = hash.to_owned();
        Box::pin(async move { Ok(self.0.call(move |c| sessions::delete(c, &hash)).await?) })
    }

    fn purge_sessions(&self, idle_before_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| sessions::purge_idle(c, idle_before_ms))
                .await?)
        })
    }
}

/// The webhook inbox in the operational store.
#[derive(Debug, Clone)]
pub struct SqliteInbox(pub OpsStore);

fn status_name(status: EventStatus) -> &'static str {
    status.as_str()
}

fn inbox_event(row: inbox::InboxRow) -> InboxEvent {
    let status = match row.status.as_str() {
        "pending" => EventStatus::Pending,
        "processing" => EventStatus::Processing,
        "done" => EventStatus::Done,
        _ => EventStatus::Dead,
    };
    InboxEvent {
        id: row.id,
        connector: row.connector,
        tool: row.tool,
        delivery_id: row.delivery_id,
        event: row.event,
        body: row.body,
        status,
        attempts: row.attempts,
        last_error: row.last_error,
        outcome: row.outcome,
        received_ms: row.received_ms,
    }
}

impl InboxStore for SqliteInbox {
    fn enqueue_batch(&self, events: &[NewEvent]) -> StoreFuture<'_, Vec<Enqueued>> {
        let rows: Vec<inbox::NewInboxEvent> = events
            .iter()
            .map(|e| inbox::NewInboxEvent {
                connector: e.connector.clone(),
                tool: e.tool.clone(),
                delivery_id: e.delivery_id.clone(),
                event: e.event.clone(),
                body: e.body.clone(),
                received_ms: e.received_ms,
            })
            .collect();
        Box::pin(async move {
            let stored = self
                .0
                .transaction(move |tx| inbox::enqueue(tx, &rows))
                .await?;
            Ok(stored
                .into_iter()
                .map(|s| match s {
                    inbox::Stored::New(id) => Enqueued::Accepted(id),
                    inbox::Stored::Duplicate(id) => Enqueued::Duplicate(id),
                })
                .collect())
        })
    }

    fn claim(&self, now_ms: u64) -> StoreFuture<'_, Option<InboxEvent>> {
        Box::pin(async move {
            let row = self
                .0
                .transaction(move |tx| inbox::claim(tx, now_ms))
                .await?;
            Ok(row.map(inbox_event))
        })
    }

    fn complete(&self, id: i64, outcome: &str) -> StoreFuture<'_, ()> {
        let outcome = outcome.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| inbox::complete(c, id, &outcome, now_ms()))
                .await?)
        })
    }

    fn fail(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> StoreFuture<'_, ()> {
        let error = error.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| inbox::fail(c, id, &error, retry_at_ms, now_ms()))
                .await?)
        })
    }

    fn requeue_in_flight(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { Ok(self.0.call(|c| inbox::requeue_processing(c)).await?) })
    }

    fn revive(&self, id: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move { Ok(self.0.call(move |c| inbox::revive(c, id, now_ms())).await?) })
    }

    fn depth(&self) -> StoreFuture<'_, QueueDepth> {
        Box::pin(async move {
            let d = self.0.call(|c| inbox::depth(c)).await?;
            Ok(QueueDepth {
                pending: d.pending,
                processing: d.processing,
                done: d.done,
                dead: d.dead,
            })
        })
    }

    fn list(&self, status: EventStatus, limit: usize) -> StoreFuture<'_, Vec<InboxEvent>> {
        let status = status_name(status);
        Box::pin(async move {
            let rows = self.0.call(move |c| inbox::list(c, status, limit)).await?;
            Ok(rows.into_iter().map(inbox_event).collect())
        })
    }
}

/// Reviews, their versions, findings, triage state and history in the operational store, with
/// memory consulted before a review is stored.
#[derive(Clone)]
pub struct SqliteReviews {
    ops: OpsStore,
    memory: Memory,
    embedder: Arc<dyn TextEmbedder>,
    has_embedder: bool,
    recall: RecallSetup,
}

impl std::fmt::Debug for SqliteReviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReviews")
            .field("recall", &self.recall)
            .finish_non_exhaustive()
    }
}

/// What texts embed as without an embedder: zero vectors, similar to nothing.
struct NoEmbedder(usize);

impl TextEmbedder for NoEmbedder {
    fn dimensions(&self) -> usize {
        self.0
    }

    fn embed(&self, texts: &[&str]) -> vigil_store::Result<Vec<Vec<f32>>> {
        Ok(vec![vec![0.0; self.0]; texts.len()])
    }
}

/// What [`SqliteReviews::store_analysis`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisStored {
    /// The review the content is stored under.
    pub review_id: String,
    /// Whether the review was new (false: the same review was stored before).
    pub review_stored: bool,
    /// The artifact version in memory, when the artifact was stored.
    pub put: Option<PutOutcome>,
}

impl SqliteReviews {
    /// Reviews over `ops`, consulting memory as `recall` says.
    pub fn new(ops: OpsStore, recall: RecallSetup) -> SqliteReviews {
        let (embedder, has_embedder): (Arc<dyn TextEmbedder>, bool) = match &recall.embedder {
            Some(e) => (e.clone(), true),
            None => (Arc::new(NoEmbedder(DEFAULT_DIMENSIONS)), false),
        };
        SqliteReviews {
            memory: Memory::new(ops.clone(), embedder.dimensions()),
            ops,
            embedder,
            has_embedder,
            recall,
        }
    }

    /// The operational store.
    pub fn ops(&self) -> &OpsStore {
        &self.ops
    }

    /// Institutional memory.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The embedder (zero vectors when none is loaded) and whether one is loaded.
    pub fn embedder(&self) -> (&dyn TextEmbedder, bool) {
        (self.embedder.as_ref(), self.has_embedder)
    }

    async fn exists(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        Ok(self
            .ops
            .call(move |c| Ok(reviews::artifact_of(c, &id)?.is_some()))
            .await?)
    }

    /// Stores the artifact's text in memory, consults memory, and records the review.
    async fn store(&self, stored: StoredReview, artifact: Option<Artifact>) -> Result<Analysed> {
        let done = self.store_analysis(stored, artifact.as_ref()).await?;
        Ok(Analysed {
            review_id: done.review_id,
            stored: done.review_stored,
        })
    }

    /// What the service does with an analysed artifact version, for callers outside it (such
    /// as `vigil ingest`): its text and its finding texts go into memory (unchanged chunks keep
    /// their embeddings), memory is consulted, and the review is recorded. Nothing is done again
    /// for a review already stored; a run cut off before the review was recorded redoes only
    /// what is missing.
    pub async fn store_analysis(
        &self,
        stored: StoredReview,
        artifact: Option<&Artifact>,
    ) -> Result<AnalysisStored> {
        let mut stored = stored;
        // Nothing is new when the artifact's latest review is of this content (a redelivery, a
        // second ingest). Content reviewed before but not the latest (an artifact changed and
        // then changed back) is a new version, reviewed again.
        let artifact_id = stored.review.artifact.clone();
        let latest = self
            .ops
            .call(move |c| reviews::latest_review_of(c, &artifact_id))
            .await?;
        if let Some((id, hash)) = latest {
            if hash == stored.review.content_hash {
                return Ok(AnalysisStored {
                    review_id: id,
                    ..AnalysisStored::default()
                });
            }
        }
        let mut put = None;
        if let Some(artifact) = artifact {
            let record = ArtifactRecord::from_artifact(artifact, stored.created_ms as i64);
            let outcome = self
                .memory
                .put_artifact(&record, self.embedder.as_ref())
                .await?;
            if self.has_embedder {
                self.memory
                    .add_findings(
                        &record,
                        outcome.version,
                        &stored.review.findings,
                        self.embedder.as_ref(),
                    )
                    .await?;
            }
            put = Some(outcome);
        }

        if self.exists(&stored.id).await? {
            // Its first review keeps its id; this version's review gets one of its own.
            let Some(version) = put.as_ref().map(|p| p.version) else {
                return Ok(AnalysisStored {
                    review_id: stored.id,
                    ..AnalysisStored::default()
                });
            };
            stored.id = version_review_id(&stored.id, version);
        }
        let mut review = stored.review;
        let recalled = self.consult(&mut review, stored.created_ms).await?;
        let new = NewReview {
            id: stored.id,
            source: stored.source,
            created_ms: stored.created_ms,
            review,
            recall: recalled,
        };
        let review_id = new.id.clone();
        let review_stored = self
            .ops
            .transaction(move |tx| reviews::insert_review(tx, &new))
            .await?;
        Ok(AnalysisStored {
            review_id,
            review_stored,
            put,
        })
    }

    /// Runs recall over a review before it is stored.
    async fn consult(
        &self,
        review: &mut vigil_core::Review,
        now_ms: u64,
    ) -> Result<Vec<FindingRecall>> {
        let feedback = self.ops.dispositions(reviews::DEFAULT_ORG).await?;
        let ctx = RecallContext {
            org: reviews::DEFAULT_ORG.to_owned(),
            today: day_of(now_ms),
        };
        Ok(recall::recall(
            &self.memory,
            &feedback,
            review,
            &ctx,
            self.embedder.as_ref(),
            &self.recall.config,
            &self.recall.bands,
        )
        .await?)
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds.
pub fn day_of(ms: u64) -> String {
    let (y, m, d) = vigil_store::decisions::civil_date((ms / 86_400_000) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn status_of(name: &str) -> FindingStatus {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).unwrap_or_default()
}

fn finding_state(t: TriageState) -> FindingState {
    FindingState {
        status: status_of(&t.status),
        assignee: t.assignee,
        comments: t
            .comments
            .into_iter()
            .map(|c| TriageComment {
                author: c.author,
                text: c.text,
                at_ms: c.at_ms,
            })
            .collect(),
        updated_ms: t.updated_ms,
    }
}

fn triage_state(s: &FindingState) -> TriageState {
    TriageState {
        status: s.status.as_str().to_owned(),
        assignee: s.assignee.clone(),
        comments: s
            .comments
            .iter()
            .map(|c| TriageNote {
                author: c.author.clone(),
                text: c.text.clone(),
                at_ms: c.at_ms,
            })
            .collect(),
        updated_ms: s.updated_ms,
    }
}

fn finding_record(row: FindingRow) -> FindingRecord {
    FindingRecord {
        review_id: row.review_id,
        artifact: row.artifact_id,
        artifact_title: row.artifact_title,
        tool: row.tool,
        project: row.project,
        team: row.team,
        finding: row.finding,
        state: finding_state(row.triage),
        recall: row.recall,
    }
}

/// The findings query of a filter, its values checked and put in their stored form.
fn finding_query(filter: &FindingFilter) -> Result<FindingQuery> {
    FindingMatcher::new(filter)?;
    let (offset, limit) = crate::store::page_bounds(filter.offset, filter.limit);
    let severity = filter
        .severity
        .as_deref()
        .map(|s| {
            s.parse::<vigil_core::Severity>()
                .map(|v| v.as_str().to_owned())
        })
        .transpose()
        .map_err(|_| Error::BadRequest("unknown severity".to_owned()))?;
    Ok(FindingQuery {
        severity,
        status: filter
            .status
            .as_deref()
            .map(|s| status_of(s).as_str().to_owned()),
        rule: filter.rule.clone(),
        framework: filter.framework.clone(),
        team: filter.team.clone(),
        project: filter.project.clone(),
        tool: filter.tool.clone(),
        review: filter.review.clone(),
        offset,
        limit,
    })
}

fn stored_review(row: reviews::ReviewRow) -> StoredReview {
    StoredReview {
        id: row.id,
        source: row.source,
        created_ms: row.created_ms,
        review: row.review,
    }
}

impl ReviewStore for SqliteReviews {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let chunks = self.memory.prepare_index().await?;
            tracing::info!(
                chunks,
                ms = started.elapsed().as_millis() as u64,
                "memory search index ready"
            );
            Ok(())
        })
    }

    fn put_review(&self, review: StoredReview) -> StoreFuture<'_, bool> {
        Box::pin(async move { Ok(self.store(review, None).await?.stored) })
    }

    fn put_analysis(&self, review: StoredReview, artifact: Artifact) -> StoreFuture<'_, Analysed> {
        Box::pin(self.store(review, Some(artifact)))
    }

    fn review(&self, id: &str) -> StoreFuture<'_, Option<StoredReview>> {
        let id = id.to_owned();
        Box::pin(async move {
            let row = self.ops.call(move |c| reviews::review(c, &id)).await?;
            Ok(row.map(stored_review))
        })
    }

    fn reviews(&self, offset: usize, limit: usize) -> StoreFuture<'_, Page<StoredReview>> {
        Box::pin(async move {
            let page = self
                .ops
                .call(move |c| reviews::latest_reviews(c, offset, limit))
                .await?;
            Ok(Page {
                total: page.total,
                items: page.items.into_iter().map(stored_review).collect(),
            })
        })
    }

    fn findings(&self, filter: &FindingFilter) -> StoreFuture<'_, Page<FindingRecord>> {
        let query = finding_query(filter);
        Box::pin(async move {
            let query = query?;
            let page = self.ops.call(move |c| reviews::findings(c, &query)).await?;
            Ok(Page {
                total: page.total,
                items: page.items.into_iter().map(finding_record).collect(),
            })
        })
    }

    fn finding(&self, id: &str) -> StoreFuture<'_, Option<FindingRecord>> {
        let id = id.to_owned();
        Box::pin(async move {
            let row = self.ops.call(move |c| reviews::finding(c, &id)).await?;
            Ok(row.map(finding_record))
        })
    }

    fn triage(
        &self,
        id: &str,
        change: &Triage,
        author: &str,
        now_ms: u64,
    ) -> StoreFuture<'_, FindingState> {
        let (id, change, author) = (id.to_owned(), change.clone(), author.to_owned());
        Box::pin(async move {
            let key = id.clone();
            let state = self
                .ops
                .transaction(move |tx| {
                    reviews::triage(tx, &key, reviews::DEFAULT_ORG, |t| {
                        let mut state = finding_state(t.clone());
                        apply_triage(&mut state, &change, &author, now_ms);
                        *t = triage_state(&state);
                    })
                })
                .await?;
            state.map(finding_state).ok_or(Error::NotFound {
                kind: "finding",
                id,
            })
        })
    }

    fn review_versions(&self, review_id: &str) -> StoreFuture<'_, Option<Vec<VersionSummary>>> {
        let id = review_id.to_owned();
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| match reviews::artifact_of(c, &id)? {
                    Some(artifact) => Ok(Some(reviews::versions(c, &artifact)?)),
                    None => Ok(None),
                })
                .await?)
        })
    }

    fn review_diff(
        &self,
        review_id: &str,
        from: u32,
        to: u32,
    ) -> StoreFuture<'_, Option<FindingDiff>> {
        let id = review_id.to_owned();
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| match reviews::artifact_of(c, &id)? {
                    Some(artifact) => reviews::diff(c, &artifact, from, to),
                    None => Ok(None),
                })
                .await?)
        })
    }

    fn finding_history(&self, id: &str) -> StoreFuture<'_, Vec<HistoryItem>> {
        let id = id.to_owned();
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| reviews::finding_history(c, &id))
                .await?)
        })
    }

    fn artifacts(&self, query: ArtifactQuery) -> StoreFuture<'_, Page<ArtifactSummary>> {
        Box::pin(async move {
            let page = self
                .ops
                .call(move |c| reviews::artifacts(c, &query))
                .await?;
            Ok(Page {
                total: page.total,
                items: page.items,
            })
        })
    }

    fn artifact(&self, id: &str) -> StoreFuture<'_, Option<ArtifactSummary>> {
        let id = id.to_owned();
        Box::pin(async move { Ok(self.ops.call(move |c| reviews::artifact(c, &id)).await?) })
    }

    fn artifact_versions(&self, id: &str) -> StoreFuture<'_, Vec<ArtifactVersion>> {
        let id = id.to_owned();
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| reviews::artifact_versions(c, &id))
                .await?)
        })
    }

    fn artifact_text(&self, id: &str, version: u32) -> StoreFuture<'_, Option<String>> {
        let id = id.to_owned();
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| reviews::artifact_text(c, &id, version))
                .await?)
        })
    }

    fn record_decision(
        &self,
        decision: Decision,
        author: &str,
        now_ms: u64,
    ) -> StoreFuture<'_, Option<FindingState>> {
        let author = author.to_owned();
        Box::pin(async move {
            self.memory
                .add_decisions(std::slice::from_ref(&decision), self.embedder.as_ref())
                .await?;
            let status = match decision.kind {
                DecisionKind::RiskAccepted => FindingStatus::RiskAccepted,
                DecisionKind::FalsePositive => FindingStatus::FalsePositive,
                DecisionKind::Mitigated => FindingStatus::Mitigated,
                DecisionKind::ApprovedPattern | DecisionKind::Policy => return Ok(None),
            };
            let Some(fingerprint) = decision
                .fingerprint
                .clone()
                .filter(|_| decision.scope == DecisionScope::Finding)
            else {
                return Ok(None);
            };
            let change = Triage {
                status: Some(status),
                assignee: None,
                comment: Some(format!("decision {}: {}", decision.id, decision.rationale)),
            };
            let state = self
                .ops
                .transaction(move |tx| {
                    reviews::triage(tx, &fingerprint, reviews::DEFAULT_ORG, |t| {
                        let mut state = finding_state(t.clone());
                        apply_triage(&mut state, &change, &author, now_ms);
                        *t = triage_state(&state);
                    })
                })
                .await?;
            Ok(state.map(finding_state))
        })
    }

    fn decisions(&self) -> StoreFuture<'_, Vec<Decision>> {
        Box::pin(async move {
            let all = self.memory.decisions().await?;
            Ok(all.into_iter().map(|d| d.decision).collect())
        })
    }

    fn search(&self, query: SearchQuery) -> StoreFuture<'_, SearchHits> {
        Box::pin(self.search_memory(query))
    }

    fn dashboard(&self, now_ms: u64, weeks: u32) -> StoreFuture<'_, Dashboard> {
        Box::pin(async move {
            Ok(self
                .ops
                .call(move |c| reviews::dashboard(c, now_ms as i64, weeks))
                .await?)
        })
    }
}

impl SqliteReviews {
    /// Chunks by hybrid search; findings by hybrid search of their texts fused with a match of
    /// the words on their title, rule and artifact title (so that a rule id finds its
    /// findings); decisions by hybrid search. Without an embedder every vector is zero and the
    /// vector ranking says nothing, so only hits a word match found are kept.
    async fn search_memory(&self, query: SearchQuery) -> Result<SearchHits> {
        let vector = self
            .embedder
            .embed(&[query.text.as_str()])?
            .pop()
            .unwrap_or_default();
        let mut chunks = self
            .memory
            .search_chunks(&query.text, &vector, &query.filter, query.limit)
            .await?;
        if !self.has_embedder {
            chunks.retain(|c| c.text_rank.is_some());
        }

        let mut hybrid = self
            .memory
            .search_findings(&query.text, &vector, &query.filter, query.limit * 2)
            .await?;
        if !self.has_embedder {
            hybrid.retain(|h| h.text_rank.is_some());
        }
        let (text, filter, limit) = (query.text.clone(), query.filter.clone(), query.limit);
        let findings = self
            .ops
            .call(move |c| {
                let by_words = reviews::search_findings(c, &text, &filter, limit * 2)?;
                let key =
                    |artifact: &str, fingerprint: &str| format!("{artifact}\u{1f}{fingerprint}");
                let word_keys: Vec<String> = by_words
                    .iter()
                    .map(|r| key(&r.artifact_id, &r.finding.id))
                    .collect();
                let hybrid_keys: Vec<String> = hybrid
                    .iter()
                    .map(|h| key(&h.artifact_id, &h.fingerprint))
                    .collect();
                let mut rows: HashMap<String, reviews::FindingRow> =
                    word_keys.iter().cloned().zip(by_words).collect();
                let fused = vigil_store::memory::fuse(&[&hybrid_keys, &word_keys]);
                let wanted: Vec<(String, String)> = fused
                    .iter()
                    .filter(|(k, _)| !rows.contains_key(k))
                    .filter_map(|(k, _)| k.split_once('\u{1f}'))
                    .map(|(a, f)| (a.to_owned(), f.to_owned()))
                    .collect();
                for row in reviews::findings_by_keys(c, &wanted, &filter)? {
                    rows.insert(key(&row.artifact_id, &row.finding.id), row);
                }
                Ok(fused
                    .into_iter()
                    .filter_map(|(k, _)| rows.remove(&k))
                    .take(limit)
                    .map(finding_record)
                    .collect::<Vec<_>>())
            })
            .await?;

        let mut decisions = Vec::new();
        for (d, score) in self
            .memory
            .search_decisions(&query.text, &vector, None, usize::MAX)
            .await?
        {
            let kind_ok =
                query.decision_kinds.is_empty() || query.decision_kinds.contains(&d.decision.kind);
            if kind_ok
                && d.decision.within(&query.filter)
                && (self.has_embedder || shares_words(&query.text, &d.decision))
            {
                decisions.push((d.decision, score));
            }
            if decisions.len() >= query.limit {
                break;
            }
        }
        Ok(SearchHits {
            chunks,
            findings,
            decisions,
        })
    }
}

/// The review id of an artifact's version `version` whose content an earlier version had
/// (reviewed under `first`): derived from both, so a redelivery of the same change finds it.
fn version_review_id(first: &str, version: u32) -> String {
    crate::app::short_digest(&[first.as_bytes(), &version.to_be_bytes()])
}

/// Whether a decision's text shares a word of three letters or more with `text`.
fn shares_words(text: &str, d: &Decision) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .map(str::to_lowercase)
            .collect()
    };
    let hay = words(&format!("{} {}", d.matching_text(), d.rationale));
    words(text).iter().any(|w| hay.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{issue_token, Role};

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inbox_and_tokens_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let options = Duration::from_secs(5);
        let token = issue_token("ci", Role::Connector, 1).unwrap();
        {
            let stores = open_stores(dir.path(), options).await.unwrap();
            stores.tokens.insert(&token.record).await.unwrap();
            let out = stores
                .inbox
                .enqueue_batch(&[event("a"), event("b")])
                .await
                .unwrap();
            assert_eq!(out, [Enqueued::Accepted(1), Enqueued::Accepted(2)]);
            let claimed = stores.inbox.claim(5).await.unwrap().unwrap();
            assert_eq!(claimed.id, 1);
        }
        let stores = open_stores(dir.path(), options).await.unwrap();
        let found = stores
            .tokens
            .find_by_hash(&token.record.hash)
            .await
            .unwrap();
        assert_eq!(found.unwrap().role, Role::Connector);
        let again = stores.inbox.enqueue_batch(&[event("a")]).await.unwrap();
        assert_eq!(again, [Enqueued::Duplicate(1)]);
        assert_eq!(stores.inbox.requeue_in_flight().await.unwrap(), 1);
        let depth = stores.inbox.depth().await.unwrap();
        assert_eq!((depth.pending, depth.processing), (2, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn console_sessions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let options = Duration::from_secs(5);
        let token = issue_token("browser", Role::Security, 1).unwrap();
        let session = SessionRecord {
            hash: "h".into(),
            token_id: token.record.id.clone(),
            created_ms: 10,
            last_seen_ms: 10,
        };
        {
            let stores = open_stores(dir.path(), options).await.unwrap();
            stores.tokens.insert(&token.record).await.unwrap();
            stores.tokens.open_session(&session).await.unwrap();
            stores.tokens.touch_session("h", 20).await.unwrap();
        }
        let stores = open_stores(dir.path(), options).await.unwrap();
        let found = stores.tokens.session("h").await.unwrap().unwrap();
        assert_eq!(found.last_seen_ms, 20);
        let owner = stores.tokens.find_by_id(&found.token_id).await.unwrap();
        assert_eq!(owner.unwrap().role, Role::Security);
        assert_eq!(stores.tokens.purge_sessions(21).await.unwrap(), 1);
        assert!(!stores.tokens.end_session("h").await.unwrap());
    }

    fn analysed(text: &str) -> (vigil_core::Artifact, StoredReview) {
        let engine = vigil_analysis::Engine::with_defaults().unwrap();
        let (artifact, review) = crate::app::analyse(&engine, "t.md", text.as_bytes())
            .unwrap()
            .remove(0);
        let stored = StoredReview {
            id: crate::app::review_id(&review),
            source: "api".into(),
            created_ms: 1_000,
            review,
        };
        (artifact, stored)
    }

    fn design() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/partner-webhooks.md"
        ))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reviews_and_triage_survive_reopening_and_count_dispositions() {
        let dir = tempfile::tempdir().unwrap();
        let wait = Duration::from_secs(5);
        let (artifact, stored) = analysed(&design());
        let fingerprint = stored.review.findings[0].id.clone();
        let rule = stored.review.findings[0].rule.clone();
        {
            let stores = open_stores(dir.path(), wait).await.unwrap();
            let reviews = &stores.reviews;
            assert!(
                reviews
                    .put_analysis(stored.clone(), artifact.clone())
                    .await
                    .unwrap()
                    .stored
            );
            assert!(
                !reviews
                    .put_analysis(stored.clone(), artifact)
                    .await
                    .unwrap()
                    .stored
            );
            let change = Triage {
                status: Some(FindingStatus::FalsePositive),
                assignee: Some("ana".into()),
                comment: Some("the proxy strips it".into()),
            };
            let state = reviews
                .triage(&fingerprint, &change, "sec", 2_000)
                .await
                .unwrap();
            assert_eq!(state.status, FindingStatus::FalsePositive);
        }

        let stores = open_stores(dir.path(), wait).await.unwrap();
        let review = stores.reviews.review(&stored.id).await.unwrap().unwrap();
        assert_eq!(review.review.findings.len(), stored.review.findings.len());
        let found = stores.reviews.finding(&fingerprint).await.unwrap().unwrap();
        assert_eq!(found.state.status, FindingStatus::FalsePositive);
        assert_eq!(found.state.assignee.as_deref(), Some("ana"));
        assert_eq!(found.state.comments[0].text, "the proxy strips it");
        let filter = FindingFilter {
            status: Some("false_positive".into()),
            ..FindingFilter::default()
        };
        let page = stores.reviews.findings(&filter).await.unwrap();
        assert_eq!(page.total, 1);

        let ops = OpsStore::open(&DataDir::new(dir.path()), &OpsOptions::default(), &[])
            .await
            .unwrap();
        let counts = ops.dispositions(reviews::DEFAULT_ORG).await.unwrap();
        assert_eq!(counts, vec![(rule, "false_positive".to_owned(), 1)]);
        let history = stores.reviews.finding_history(&fingerprint).await.unwrap();
        let events: Vec<&str> = history.iter().map(|h| h.event.as_str()).collect();
        assert_eq!(events, ["new", "status"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_artifact_changed_back_is_a_new_version_and_a_redelivery_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), Duration::from_secs(5))
            .await
            .unwrap();
        let (a1, r1) = analysed(&design());
        let (a2, r2) = analysed(&design().replace("HMAC", "a shared password"));
        let first = stores
            .reviews
            .put_analysis(r1.clone(), a1.clone())
            .await
            .unwrap();
        assert_eq!(first.review_id, r1.id);
        stores.reviews.put_analysis(r2, a2).await.unwrap();

        // Back at the first text: a third version, reviewed under an id of its own.
        let third = stores
            .reviews
            .put_analysis(r1.clone(), a1.clone())
            .await
            .unwrap();
        assert!(third.stored);
        assert_ne!(third.review_id, r1.id);
        let versions = stores
            .reviews
            .review_versions(&r1.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(versions.len(), 3, "{versions:?}");
        assert_eq!(
            versions[2].review_id.as_deref(),
            Some(third.review_id.as_str())
        );
        let latest = stores.reviews.reviews(0, 10).await.unwrap();
        assert_eq!(latest.items[0].id, third.review_id);

        // The same content again (a redelivery): nothing new, and the answer names the review
        // it is stored under.
        let again = stores.reviews.put_analysis(r1, a1).await.unwrap();
        assert!(!again.stored);
        assert_eq!(again.review_id, third.review_id);
        assert_eq!(
            stores
                .reviews
                .review_versions(&again.review_id)
                .await
                .unwrap()
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_changed_artifact_is_a_new_version_of_the_same_review() {
        let dir = tempfile::tempdir().unwrap();
        let stores = open_stores(dir.path(), Duration::from_secs(5))
            .await
            .unwrap();
        let (a1, r1) = analysed(&design());
        let changed = design().replace("HMAC", "a shared password");
        let (a2, r2) = analysed(&changed);
        assert_ne!(r1.id, r2.id);
        stores.reviews.put_analysis(r1.clone(), a1).await.unwrap();
        stores.reviews.put_analysis(r2.clone(), a2).await.unwrap();

        let latest = stores.reviews.reviews(0, 10).await.unwrap();
        assert_eq!(
            (latest.total, latest.items[0].id.as_str()),
            (1, r2.id.as_str())
        );
        let versions = stores
            .reviews
            .review_versions(&r1.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[1].review_id.as_deref(), Some(r2.id.as_str()));
        let diff = stores
            .reviews
            .review_diff(&r2.id, 1, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            diff.entries.len(),
            versions[1].new + versions[1].unchanged + versions[1].changed + versions[1].gone
        );
        let all = stores
            .reviews
            .findings(&FindingFilter::default())
            .await
            .unwrap();
        assert!(all.items.iter().all(|f| f.review_id == r2.id));
    }

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_764_806_400_000), "2025-12-04");
    }
}
