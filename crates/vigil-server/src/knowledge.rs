//! API v1 over what the service remembers: artifacts and their versions, review versions and
//! their diffs, finding history, the security team's decisions, search, guidance for a planned
//! task, and the dashboard. Handlers take their inputs apart, call the review store (or the
//! engine, for guidance), and map the result.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vigil_store::decisions::is_day;

use crate::api::{query, read_body, require_json, QueryParams};
use crate::app::{now_ms, AppState};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody, Result};
use crate::sqlite::day_of;
use crate::store::{
    page_bounds, ArtifactQuery, Decision, DecisionKind, DecisionScope, FindingState, SearchFilter,
    SearchQuery,
};

/// Moves a value into a type of the same JSON shape (store records into their documented API
/// views).
fn view<T: Serialize, U: DeserializeOwned>(value: T) -> Result<U> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Store(format!("record does not fit its view: {e}")))
}

fn not_found(kind: &'static str, id: impl Into<String>) -> Error {
    Error::NotFound {
        kind,
        id: id.into(),
    }
}

/// Filters over artifacts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArtifactFilter {
    /// Source format (github, jira_v3, markdown...).
    pub tool: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Skip this many (default 0).
    pub offset: Option<usize>,
    /// At most this many (default 50, at most 500; 0 gives the total alone).
    pub limit: Option<usize>,
}

/// An artifact: its latest version and review.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArtifactView {
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
    /// The latest review's id (absent when the artifact was not reviewed by the service).
    pub review_id: Option<String>,
}

/// A page of artifacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactPage {
    /// Matching artifacts in total.
    pub total: usize,
    /// This page, most recently changed first.
    pub items: Vec<ArtifactView>,
}

/// Lists artifacts (latest version of each), most recently changed first.
#[utoipa::path(get, path = "/api/v1/artifacts", tag = "artifacts", params(ArtifactFilter),
    responses((status = 200, description = "A page of artifacts", body = ArtifactPage)))]
pub async fn list_artifacts(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<ArtifactPage>> {
    let f: ArtifactFilter = query(raw)?;

    let (offset, limit) = page_bounds(f.offset, f.limit);
    let q = ArtifactQuery {
        tool: f.tool,
        team: f.team,
        project: f.project,
        offset,
        limit,
    };
    let page = state.reviews.artifacts(q).await?;

    Ok(Json(ArtifactPage {
        total: page.total,
        items: view(page.items)?,
    }))
}

/// An artifact with its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactDetail {
    /// The latest version and review.
    #[serde(flatten)]
    pub artifact: ArtifactView,
    /// Every version, oldest first.
    pub versions: Vec<ArtifactVersionView>,
}

/// One version of an artifact.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArtifactVersionView {
    /// Version, from 1.
    pub version: u32,
    /// Title.
    pub title: String,
    /// SHA-256 of title and text.
    pub content_hash: String,
    /// When it was recorded, Unix milliseconds.
    pub created_ms: i64,
}

/// Reads an artifact: its latest version, review and metadata.
#[utoipa::path(get, path = "/api/v1/artifacts/{id}", tag = "artifacts",
    params(("id" = String, Path, description = "Artifact id (URL-encoded)")),
    responses((status = 200, description = "The artifact", body = ArtifactDetail),
        (status = 404, description = "No such artifact", body = ErrorBody)))]
pub async fn get_artifact(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ArtifactDetail>> {
    let found = state.reviews.artifact(&id).await?;
    let artifact = found.ok_or_else(|| not_found("artifact", &id))?;
    let versions = state.reviews.artifact_versions(&id).await?;

    Ok(Json(ArtifactDetail {
        artifact: view(artifact)?,
        versions: view(versions)?,
    }))
}

/// Lists an artifact's versions, oldest first.
#[utoipa::path(get, path = "/api/v1/artifacts/{id}/versions", tag = "artifacts",
    params(("id" = String, Path, description = "Artifact id (URL-encoded)")),
    responses((status = 200, description = "Versions", body = Vec<ArtifactVersionView>),
        (status = 404, description = "No such artifact", body = ErrorBody)))]
pub async fn artifact_versions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ArtifactVersionView>>> {
    let versions = state.reviews.artifact_versions(&id).await?;

    if versions.is_empty() {
        return Err(not_found("artifact", id));
    }
    Ok(Json(view(versions)?))
}

/// The normalized text of one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactText {
    /// Artifact id.
    pub artifact_id: String,
    /// Version.
    pub version: u32,
    /// Normalized text: sections in order, separated by blank lines.
    pub text: String,
}

/// Reads the normalized text of one version of an artifact.
#[utoipa::path(get, path = "/api/v1/artifacts/{id}/versions/{version}", tag = "artifacts",
    params(("id" = String, Path, description = "Artifact id (URL-encoded)"),
        ("version" = u32, Path, description = "Version, from 1")),
    responses((status = 200, description = "The text", body = ArtifactText),
        (status = 404, description = "No such artifact version", body = ErrorBody)))]
pub async fn artifact_version(
    State(state): State<Arc<AppState>>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<ArtifactText>> {
    let version: u32 = version
        .parse()
        .map_err(|_| Error::BadRequest(format!("version `{version}` is not a number")))?;
    let text = state.reviews.artifact_text(&id, version).await?;

    let text = text.ok_or_else(|| not_found("artifact version", format!("{id} v{version}")))?;
    Ok(Json(ArtifactText {
        artifact_id: id,
        version,
        text,
    }))
}

/// One review version of an artifact.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewVersionView {
    /// Review version, from 1.
    pub version: u32,
    /// Review id (absent for versions recorded by `vigil ingest`).
    pub review_id: Option<String>,
    /// Content hash of the analysed text.
    pub content_hash: String,
    /// When it was recorded (ISO 8601 UTC).
    pub created_at: String,
    /// Findings raised.
    pub findings: usize,
    /// Findings new against the version before.
    pub new: usize,
    /// Findings unchanged.
    pub unchanged: usize,
    /// Findings changed (rescored or reworded evidence).
    pub changed: usize,
    /// Findings gone.
    pub gone: usize,
}

/// Lists the review versions of the artifact this review is about, oldest first.
#[utoipa::path(get, path = "/api/v1/reviews/{id}/versions", tag = "reviews",
    params(("id" = String, Path, description = "Review id (any version of the artifact)")),
    responses((status = 200, description = "Versions", body = Vec<ReviewVersionView>),
        (status = 404, description = "No such review", body = ErrorBody)))]
pub async fn review_versions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ReviewVersionView>>> {
    let versions = state.reviews.review_versions(&id).await?;

    let versions = versions.ok_or_else(|| not_found("review", id))?;
    Ok(Json(view(versions)?))
}

/// Versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The earlier review version.
    pub from: u32,
    /// The later review version.
    pub to: u32,
}

/// One finding's entry in a diff.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiffEntryView {
    /// Fingerprint (the earlier one for a gone finding).
    pub fingerprint: String,
    /// The fingerprint it replaces, for a changed finding whose evidence changed.
    pub previous: Option<String>,
    /// Rule id.
    pub rule: String,
    /// `new`, `unchanged`, `changed` or `gone`.
    pub change: String,
    /// Why, for people.
    pub detail: String,
}

/// The findings of two review versions compared.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDiff {
    /// The earlier version.
    pub from: u32,
    /// The later version.
    pub to: u32,
    /// One entry per finding of either version.
    pub entries: Vec<DiffEntryView>,
}

/// New, unchanged, changed and gone findings between two review versions of an artifact.
#[utoipa::path(get, path = "/api/v1/reviews/{id}/diff", tag = "reviews",
    params(("id" = String, Path, description = "Review id (any version of the artifact)"),
        DiffQuery),
    responses((status = 200, description = "The diff", body = ReviewDiff),
        (status = 400, description = "Missing or bad versions", body = ErrorBody),
        (status = 404, description = "No such review or version", body = ErrorBody)))]
pub async fn review_diff(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: QueryParams,
) -> Result<Json<ReviewDiff>> {
    let q: DiffQuery = query(raw)?;

    let diff = state.reviews.review_diff(&id, q.from, q.to).await?;

    let diff =
        diff.ok_or_else(|| not_found("review versions", format!("{id} {}..{}", q.from, q.to)))?;
    Ok(Json(ReviewDiff {
        from: q.from,
        to: q.to,
        entries: view(diff.entries)?,
    }))
}

/// One entry of a finding's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// Review version it happened in, when it came from a review.
    pub review_version: Option<u32>,
    /// `new`, `unchanged`, `changed`, `gone` or `status`.
    pub event: String,
    /// What happened.
    pub detail: String,
    /// When (ISO 8601 UTC).
    pub at: String,
}

/// A finding's workflow history: raised, carried across versions, status changes.
#[utoipa::path(get, path = "/api/v1/findings/{id}/history", tag = "findings",
    params(("id" = String, Path, description = "Finding id")),
    responses((status = 200, description = "History, oldest first", body = Vec<HistoryView>),
        (status = 404, description = "No such finding", body = ErrorBody)))]
pub async fn finding_history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryView>>> {
    let history = state.reviews.finding_history(&id).await?;

    if history.is_empty() {
        return Err(not_found("finding", id));
    }
    Ok(Json(view(history)?))
}

/// Kind of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKindName {
    /// The risk is accepted until an expiry date (owner, approver, expires_on required).
    RiskAccepted,
    /// The finding is wrong here (rationale is the reason).
    FalsePositive,
    /// The risk is mitigated (rationale says how; link required).
    Mitigated,
    /// An approved design pattern: counts as a stated control where the design states it.
    ApprovedPattern,
    /// An organisation policy.
    Policy,
}

/// What a decision applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionScopeName {
    /// One finding (fingerprint required), and the same finding in reworded versions.
    Finding,
    /// A rule on a named component (rule and component required).
    RuleOnComponent,
    /// A pattern across projects.
    Pattern,
}

/// A decision to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// What was decided.
    pub kind: DecisionKindName,
    /// What it applies to.
    pub scope: DecisionScopeName,
    /// The finding (scope `finding`).
    pub fingerprint: Option<String>,
    /// The rule (scope `rule_on_component`; optional for patterns).
    pub rule: Option<String>,
    /// The component (scope `rule_on_component`).
    pub component: Option<String>,
    /// Why: the reason, how it was mitigated, the pattern's statement.
    pub rationale: String,
    /// Who owns the risk.
    pub owner: Option<String>,
    /// Who approved it.
    pub approver: Option<String>,
    /// Last day it holds, `YYYY-MM-DD`.
    pub expires_on: Option<String>,
    /// Ticket or pull request of a mitigation.
    pub link: Option<String>,
    /// Text the decision is matched against by meaning (defaults to the finding's text, or the
    /// rationale).
    pub context: Option<String>,
    /// The team whose artifacts it applies to (all teams when absent; a decision on a finding
    /// takes its artifact's team).
    pub team: Option<String>,
    /// The project whose artifacts it applies to (all when absent; a decision on a finding takes
    /// its artifact's project).
    pub project: Option<String>,
}

/// A recorded decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// Id (`DEC-...`).
    pub id: String,
    /// What was decided.
    pub kind: DecisionKindName,
    /// What it applies to.
    pub scope: DecisionScopeName,
    /// The finding.
    pub fingerprint: Option<String>,
    /// The rule.
    pub rule: Option<String>,
    /// The component.
    pub component: Option<String>,
    /// The artifact it was made on.
    pub artifact_id: Option<String>,
    /// The artifact's key in its tool.
    pub external_key: Option<String>,
    /// Source tool.
    pub tool: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Why.
    pub rationale: String,
    /// Risk owner.
    pub owner: Option<String>,
    /// Approver.
    pub approver: Option<String>,
    /// Last day it holds.
    pub expires_on: Option<String>,
    /// Ticket or pull request.
    pub link: Option<String>,
    /// When it was made, Unix milliseconds.
    pub created_at_ms: i64,
    /// False once `expires_on` has passed.
    #[serde(default)]
    pub active: bool,
}

fn decision_view(d: Decision, today: &str) -> Result<DecisionView> {
    let active = d.expires_on.as_deref().is_none_or(|day| day >= today);
    let mut v: DecisionView = view(d)?;
    v.active = active;
    Ok(v)
}

/// The decision and the finding state it set.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedDecision {
    /// The decision.
    pub decision: DecisionView,
    /// The finding's new state, for a decision on a finding.
    pub finding_state: Option<FindingState>,
}

fn new_decision_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| Error::Store(format!("no randomness: {e}")))?;
    Ok(format!("DEC-{}", crate::auth::hex(&bytes)))
}

/// Builds the stored decision, taking the finding's rule, artifact and text for one on a
/// finding.
async fn build_decision(state: &AppState, new: NewDecision) -> Result<Decision> {
    let kind = DecisionKind::parse(&view::<_, String>(new.kind)?)
        .ok_or_else(|| Error::BadRequest("unknown decision kind".to_owned()))?;
    let scope = DecisionScope::parse(&view::<_, String>(new.scope)?)
        .ok_or_else(|| Error::BadRequest("unknown decision scope".to_owned()))?;
    let mut d = Decision {
        id: new_decision_id()?,
        kind,
        scope,
        fingerprint: new.fingerprint,
        rule: new.rule,
        component: new.component,
        artifact_id: None,
        external_key: None,
        tool: None,
        team: new.team.filter(|t| !t.trim().is_empty()),
        project: new.project.filter(|p| !p.trim().is_empty()),
        context: new.context.clone().unwrap_or_default(),
        rationale: new.rationale,
        owner: new.owner,
        approver: new.approver,
        expires_on: new.expires_on,
        link: new.link,
        created_at_ms: now_ms() as i64,
    };
    d.check().map_err(Error::BadRequest)?;
    // A new acceptance must end in the future and be approved by someone other than its owner
    // (an export of past decisions may hold expired ones; `vigil ingest` keeps those).
    if d.kind == DecisionKind::RiskAccepted {
        let today = day_of(now_ms());
        if d.expires_on
            .as_deref()
            .is_some_and(|day| day <= today.as_str())
        {
            return Err(Error::BadRequest(format!(
                "expires_on must be after today ({today}): a new acceptance ends later"
            )));
        }
        // Compared as people read them: case, spacing and invisible characters aside.
        let visible = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_whitespace() && !vigil_store::decisions::is_invisible(*c))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => visible(a) == visible(b),
            _ => false,
        };
        if same(&d.owner, &d.approver) {
            return Err(Error::BadRequest(
                "the approver of a risk acceptance must be someone other than its owner".to_owned(),
            ));
        }
    }
    if let (DecisionScope::Finding, Some(fp)) = (scope, d.fingerprint.clone()) {
        let record = state.reviews.finding(&fp).await?;
        let record = record.ok_or_else(|| not_found("finding", fp))?;
        let key = state
            .reviews
            .review(&record.review_id)
            .await?
            .and_then(|r| r.review.meta.key);
        d.rule = Some(record.finding.rule.clone());
        d.artifact_id = Some(record.artifact.clone());
        d.external_key = key;
        d.tool = Some(record.tool.clone());
        d.team = record.team.clone();
        d.project = record.project.clone();
        if new.context.is_none() {
            d.context = vigil_store::decisions::finding_text(&record.finding);
        }
    }
    Ok(d)
}

/// Records a decision. One made on a finding sets its status (risk accepted, false positive or
/// mitigated) with a comment and a history entry; every decision is kept in memory and applied
/// to later reviews.
#[utoipa::path(post, path = "/api/v1/decisions", tag = "decisions", request_body = NewDecision,
    responses((status = 201, description = "Recorded", body = RecordedDecision),
        (status = 400, description = "Missing or malformed fields", body = ErrorBody),
        (status = 404, description = "No such finding", body = ErrorBody)))]
pub async fn create_decision(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<RecordedDecision>)> {
    require_json(&headers)?;
    let bytes = read_body(
        body,
        &headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;
    let new: NewDecision =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;

    let decision = build_decision(&state, new).await?;
    let finding_state = state
        .reviews
        .record_decision(decision.clone(), &caller.name, now_ms())
        .await?;
    tracing::info!(decision = %decision.id, kind = decision.kind.as_str(), "decision recorded");

    let today = day_of(now_ms());
    let recorded = RecordedDecision {
        decision: decision_view(decision, &today)?,
        finding_state,
    };
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// Filters over decisions.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionFilter {
    /// risk_accepted, false_positive, mitigated, approved_pattern or policy.
    pub kind: Option<DecisionKindName>,
    /// `active` (not expired) or `expired`.
    pub state: Option<String>,
    /// Skip this many (default 0).
    pub offset: Option<usize>,
    /// At most this many (default 50, at most 500; 0 gives the total alone).
    pub limit: Option<usize>,
}

/// A page of decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionPage {
    /// Matching decisions in total.
    pub total: usize,
    /// This page, newest first.
    pub items: Vec<DecisionView>,
}

/// Lists decisions, newest first.
#[utoipa::path(get, path = "/api/v1/decisions", tag = "decisions", params(DecisionFilter),
    responses((status = 200, description = "A page of decisions", body = DecisionPage),
        (status = 400, description = "Bad filter", body = ErrorBody)))]
pub async fn list_decisions(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<DecisionPage>> {
    let f: DecisionFilter = query(raw)?;
    let want_active = match f.state.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("expired") => Some(false),
        Some(other) => return Err(Error::BadRequest(format!("unknown state `{other}`"))),
    };

    let all = state.reviews.decisions().await?;

    let today = day_of(now_ms());
    let mut items = all
        .into_iter()
        .map(|d| decision_view(d, &today))
        .collect::<Result<Vec<_>>>()?;
    items.retain(|d| {
        f.kind.is_none_or(|k| k == d.kind) && want_active.is_none_or(|a| a == d.active)
    });
    items.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(a.id.cmp(&b.id)));
    let (offset, limit) = page_bounds(f.offset, f.limit);
    let total = items.len();
    let items = items.into_iter().skip(offset).take(limit).collect();
    Ok(Json(DecisionPage { total, items }))
}

/// Reads one decision.
#[utoipa::path(get, path = "/api/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path, description = "Decision id")),
    responses((status = 200, description = "The decision", body = DecisionView),
        (status = 404, description = "No such decision", body = ErrorBody)))]
pub async fn get_decision(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<DecisionView>> {
    let all = state.reviews.decisions().await?;

    let found = all.into_iter().find(|d| d.id == id);
    let d = found.ok_or_else(|| not_found("decision", id))?;
    Ok(Json(decision_view(d, &day_of(now_ms()))?))
}

/// A search of memory.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words or a question.
    pub q: String,
    /// Team: passages and findings of its artifacts, decisions naming it or no team.
    pub team: Option<String>,
    /// Project: passages and findings of its artifacts, decisions naming it or no project.
    pub project: Option<String>,
    /// Source format: passages and findings of its artifacts, decisions naming it or none.
    pub tool: Option<String>,
    /// Only artifact versions recorded, findings first raised and decisions made on or after
    /// this day, `YYYY-MM-DD`.
    pub since: Option<String>,
    /// At most this many of each kind (default 10, at most 50).
    pub limit: Option<usize>,
}

/// A passage of an artifact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkView {
    /// Artifact id.
    pub artifact_id: String,
    /// Version.
    pub version: u32,
    /// The passage (at most 400 characters).
    pub text: String,
    /// Fused rank score (higher is better).
    pub score: f32,
}

/// A finding found by search.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingHit {
    /// Finding id.
    pub id: String,
    /// Rule id.
    pub rule: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Artifact id.
    pub artifact: String,
    /// Review id.
    pub review_id: String,
    /// Workflow status.
    pub status: String,
}

/// A decision found by search.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionHit {
    /// The decision.
    pub decision: DecisionView,
    /// Fused rank score (higher is better).
    pub score: f32,
}

/// What a search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Passages of artifacts (latest versions).
    pub chunks: Vec<ChunkView>,
    /// Findings of latest reviews.
    pub findings: Vec<FindingHit>,
    /// Decisions.
    pub decisions: Vec<DecisionHit>,
}

/// Unix milliseconds of the start of a `YYYY-MM-DD` day (UTC).
fn day_start_ms(day: &str) -> Result<i64> {
    let bad = || Error::BadRequest(format!("`{day}` is not YYYY-MM-DD"));
    if !is_day(day) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| day[r].parse::<i64>().map_err(|_| bad());
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    // Days from civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000)
}

fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Searches artifacts' passages, findings and decisions (full-text and, with an embedder, by
/// meaning, fused by reciprocal rank).
#[utoipa::path(get, path = "/api/v1/search", tag = "memory", params(SearchParams),
    responses((status = 200, description = "What was found", body = SearchResults),
        (status = 400, description = "Bad parameters", body = ErrorBody)))]
pub async fn search(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<SearchResults>> {
    let p: SearchParams = query(raw)?;
    if p.q.trim().is_empty() {
        return Err(Error::BadRequest("`q` is empty".to_owned()));
    }
    let since_ms = p.since.as_deref().map(day_start_ms).transpose()?;

    let hits = state
        .reviews
        .search(SearchQuery {
            text: p.q,
            filter: SearchFilter {
                team: p.team.filter(|v| !v.trim().is_empty()),
                project: p.project.filter(|v| !v.trim().is_empty()),
                tool: p.tool.filter(|v| !v.trim().is_empty()),
                since_ms,
                until_ms: None,
            },
            limit: p.limit.unwrap_or(10).clamp(1, 50),
            decision_kinds: Vec::new(),
        })
        .await?;

    let today = day_of(now_ms());
    Ok(Json(SearchResults {
        chunks: hits
            .chunks
            .into_iter()
            .map(|c| ChunkView {
                artifact_id: c.artifact_id,
                version: c.version,
                text: snippet(&c.text, 400),
                score: c.score,
            })
            .collect(),
        findings: hits
            .findings
            .into_iter()
            .map(|r| FindingHit {
                id: r.finding.id,
                rule: r.finding.rule,
                title: r.finding.title,
                severity: r.finding.score.severity.as_str().to_owned(),
                artifact: r.artifact,
                review_id: r.review_id,
                status: r.state.status.as_str().to_owned(),
            })
            .collect(),
        decisions: hits
            .decisions
            .into_iter()
            .map(|(d, score)| {
                Ok(DecisionHit {
                    decision: decision_view(d, &today)?,
                    score,
                })
            })
            .collect::<Result<_>>()?,
    }))
}

/// A planned task to get guidance on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuidanceRequest {
    /// What is going to be built, in prose (Markdown is fine).
    pub task: String,
}

/// A security requirement that applies to the task, from a catalogue rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requirement {
    /// The rule that raised it (cite this).
    pub rule: String,
    /// The threat.
    pub title: String,
    /// STRIDE or LINDDUN category.
    pub category: String,
    /// The element of the task's design it is about.
    pub element: String,
    /// What to build in: the rule's mitigations.
    pub requirements: Vec<String>,
    /// CWE ids (`CWE-319`).
    pub cwe: Vec<String>,
    /// OWASP Top 10 2021 ids.
    pub owasp_2021: Vec<String>,
    /// OWASP Top 10 2025 ids.
    pub owasp_2025: Vec<String>,
    /// The words of the task that triggered it.
    pub evidence: Vec<String>,
    /// Severity the analysis gives it.
    pub severity: String,
}

/// A decision or approved pattern from memory that bears on the task.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedDecision {
    /// Decision id (cite this).
    pub decision_id: String,
    /// Kind.
    pub kind: DecisionKindName,
    /// What it says.
    pub rationale: String,
    /// Link of a mitigation.
    pub link: Option<String>,
    /// Fused rank score.
    pub score: f32,
}

/// The security requirements that apply to a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct Guidance {
    /// One per rule the task's design triggers, highest severity first.
    pub requirements: Vec<Requirement>,
    /// Approved patterns, policies and past decisions related to the task.
    pub decisions: Vec<RelatedDecision>,
}

/// Guidance for a planned task: the catalogue rules its design triggers, with their
/// requirements and CWE/OWASP ids, and related decisions and approved patterns from memory.
/// Every item cites a rule id or a decision id.
#[utoipa::path(post, path = "/api/v1/guidance", tag = "memory", request_body = GuidanceRequest,
    responses((status = 200, description = "Requirements and related decisions", body = Guidance),
        (status = 400, description = "Empty task", body = ErrorBody),
        (status = 422, description = "The task cannot be analysed", body = ErrorBody)))]
pub async fn guidance(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Guidance>> {
    require_json(&headers)?;
    let bytes = read_body(
        body,
        &headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;
    let req: GuidanceRequest =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;
    if req.task.trim().is_empty() {
        return Err(Error::BadRequest("`task` is empty".to_owned()));
    }

    let engine = state.engine.clone();
    let text = req.task.clone();
    let reviews =
        tokio::task::spawn_blocking(move || engine.analyze_bytes("guidance", text.as_bytes()))
            .await
            .map_err(|e| Error::Store(format!("analysis task failed: {e}")))??;
    let related = state
        .reviews
        .search(SearchQuery {
            text: req.task,
            filter: SearchFilter::default(),
            limit: 10,
            decision_kinds: vec![
                DecisionKind::ApprovedPattern,
                DecisionKind::Policy,
                DecisionKind::Mitigated,
                DecisionKind::RiskAccepted,
            ],
        })
        .await?;

    Ok(Json(Guidance {
        requirements: requirements(reviews.iter().flat_map(|r| r.findings.iter())),
        decisions: related
            .decisions
            .into_iter()
            .map(|(d, score)| {
                Ok(RelatedDecision {
                    kind: view(d.kind)?,
                    decision_id: d.id,
                    rationale: d.rationale,
                    link: d.link,
                    score,
                })
            })
            .collect::<Result<_>>()?,
    }))
}

/// One requirement per rule (the highest-scored finding of each), highest score first.
fn requirements<'a>(findings: impl Iterator<Item = &'a vigil_core::Finding>) -> Vec<Requirement> {
    let mut best: Vec<&vigil_core::Finding> = Vec::new();
    for f in findings {
        match best.iter_mut().find(|b| b.rule == f.rule) {
            Some(b) if b.score.value < f.score.value => *b = f,
            Some(_) => {}
            None => best.push(f),
        }
    }
    best.sort_by(|a, b| {
        b.score
            .value
            .total_cmp(&a.score.value)
            .then(a.rule.cmp(&b.rule))
    });
    best.into_iter()
        .map(|f| Requirement {
            rule: f.rule.clone(),
            title: f.title.clone(),
            category: serde_json::to_value(f.category)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            element: f.element_name.clone(),
            requirements: f.mitigations.clone(),
            cwe: f.cwe.iter().map(|c| format!("CWE-{c}")).collect(),
            owasp_2021: f.frameworks.owasp_2021.clone(),
            owasp_2025: f.frameworks.owasp_2025.clone(),
            evidence: f.evidence.iter().map(|e| e.text.clone()).collect(),
            severity: f.score.severity.as_str().to_owned(),
        })
        .collect()
}

/// Weeks of the dashboard's trend.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// Weeks of trend (default 12, at most 104).
    pub weeks: Option<u32>,
}

/// Figures of one team.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TeamFiguresView {
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
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WeekFiguresView {
    /// Start of the week (weeks counted from the Unix epoch), Unix milliseconds.
    pub week_start_ms: i64,
    /// Findings first raised that week.
    pub raised: u64,
    /// Findings mitigated that week.
    pub mitigated: u64,
}

/// The security posture at a glance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardView {
    /// Artifacts known (in memory or reviewed).
    pub artifacts: u64,
    /// Artifacts with a review.
    pub reviewed: u64,
    /// Share of artifacts with a review, 0-1.
    pub coverage: f64,
    /// Open findings (open, confirmed, in progress) by severity.
    pub open_by_severity: std::collections::BTreeMap<String, u64>,
    /// Open findings past their due date (first raised + `[scoring.sla_days]` of the severity).
    pub sla_breaches: u64,
    /// SLA breaches by severity.
    pub sla_breaches_by_severity: std::collections::BTreeMap<String, u64>,
    /// Findings mitigated.
    pub mitigated: u64,
    /// Mean days from first raised to mitigated.
    pub mean_days_to_mitigation: Option<f64>,
    /// The same per team.
    pub teams: Vec<TeamFiguresView>,
    /// Raised and mitigated per week, oldest first.
    pub weeks: Vec<WeekFiguresView>,
}

/// Coverage, open findings by severity, SLA breaches, mean time to mitigation, by team and by
/// week.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard", params(DashboardQuery),
    responses((status = 200, description = "The figures", body = DashboardView)))]
pub async fn dashboard(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<DashboardView>> {
    let q: DashboardQuery = query(raw)?;

    let weeks = q.weeks.unwrap_or(12).clamp(1, 104);
    let figures = state.reviews.dashboard(now_ms(), weeks).await?;

    Ok(Json(view(figures)?))
}
