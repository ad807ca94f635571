//! API v1 handlers, health and metrics. Each handler takes its inputs apart, calls the analysis
//! or a store, and maps the result; blocking work (analysis, SQLite) runs on the blocking pool.

use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use vigil_analysis::report::{mermaid, sarif, svg};
use vigil_core::{Finding, Review};
use vigil_store::recall::FindingRecall;

use crate::app::{now_ms, review_id, AppState};
use crate::auth::{issue_token, Caller, Role};
use crate::error::{Error, ErrorBody, Result};
use crate::store::{
    page_bounds, EventStatus, FindingFilter, FindingRecord, FindingState, FindingStatus,
    InboxEvent, QueueDepth, StoredReview, TokenRecord, Triage,
};

/// Reads a body of at most `limit` bytes within `timeout`: 413 past the limit, whether or not a
/// length was announced; 408 when it has not all arrived in time.
pub async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge { limit });
    }
    let read = async {
        let mut out = Vec::with_capacity(announced.map_or(8192, |n| n as usize));
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| Error::BadRequest(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(Error::PayloadTooLarge { limit });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    };
    // A sender that stops half way must not hold the request (and its place) for ever.
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Error::RequestTimeout {
            secs: timeout.as_secs(),
        })?
}

/// Refuses a body that is not declared as JSON.
pub fn require_json(headers: &HeaderMap) -> Result<()> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType {
            got: content_type.to_owned(),
            expected: "application/json",
        })
    }
}

/// A request's query parameters as strings, or why they could not be read.
pub type QueryParams = std::result::Result<Query<serde_json::Value>, QueryRejection>;

/// Query parameters as a typed struct, with malformed ones answered in the service's JSON error
/// form.
pub fn query<T: serde::de::DeserializeOwned>(raw: QueryParams) -> Result<T> {
    let value = raw.map_err(|e| Error::BadRequest(e.body_text()))?.0;
    serde_json::from_value(numbers(value)).map_err(|e| Error::BadRequest(e.to_string()))
}

/// Query values arrive as strings; numeric ones are turned into numbers for the typed structs.
fn numbers(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| match (&*k, &v) {
                    (
                        "offset" | "limit" | "from" | "to" | "weeks",
                        serde_json::Value::String(s),
                    ) => {
                        let n = s.parse::<u64>().map_or(v.clone(), serde_json::Value::from);
                        (k, n)
                    }
                    _ => (k, v),
                })
                .collect(),
        ),
        other => other,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Store(format!("blocking task failed: {e}")))?
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the catalogue is loaded, the store is open and the workers run.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready", body = String),
        (status = 503, description = "Starting or stopping", body = ErrorBody)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<&'static str> {
    if state.is_ready() {
        Ok("ready")
    } else {
        Err(Error::NotReady)
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Text exposition format", body = String)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response> {
    let depth = state.inbox.depth().await.ok();

    let text = state.metrics.render(depth);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// Answers paths the router does not know.
pub async fn no_route(uri: axum::http::Uri) -> Error {
    Error::NotFound {
        kind: "route",
        id: uri.path().to_owned(),
    }
}

/// A review in lists: what it is about and how many findings it has by severity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSummary {
    /// Review id.
    pub id: String,
    /// Artifact id.
    pub artifact: String,
    /// Artifact title.
    pub title: String,
    /// Detected source format.
    pub format: String,
    /// External key (PROJ-1, owner/repo#2).
    pub key: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// `api` or `webhook:CONNECTOR`.
    pub source: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Number of findings.
    pub findings: usize,
    /// Findings rated critical or high.
    pub critical_or_high: usize,
}

impl ReviewSummary {
    fn of(r: &StoredReview) -> ReviewSummary {
        let review = &r.review;
        ReviewSummary {
            id: r.id.clone(),
            artifact: review.artifact.clone(),
            title: review.title.clone(),
            format: review.format.as_str().to_owned(),
            key: review.meta.key.clone(),
            project: review.meta.project.clone(),
            team: review.meta.team.clone(),
            source: r.source.clone(),
            created_ms: r.created_ms,
            findings: review.findings.len(),
            critical_or_high: review
                .findings
                .iter()
                .filter(|f| f.score.severity >= vigil_core::Severity::High)
                .count(),
        }
    }
}

/// The reviews of a submitted artifact (a file may hold several, such as search results).
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// One per artifact found in the body.
    pub reviews: Vec<ReviewSummary>,
}

/// How a submitted document is named.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubmitQuery {
    /// The document's file name or path (`design/partner-webhooks.md`): its stem is the
    /// artifact id, as `vigil analyze` and `vigil ingest` name files, so a later submission
    /// under the same name is a new version of the same artifact. Without it a document is
    /// named after its title (`doc-` and the title's words), or its content when it has none.
    /// Tickets (Jira, GitHub, Azure DevOps, Linear JSON) are named by their own keys.
    pub name: Option<String>,
}

/// The origin a submitted body is normalized under: `api/NAME` when named.
fn submission_origin(name: Option<&str>) -> Result<String> {
    let Some(name) = name else {
        return Ok("api".to_owned());
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "name must be 1 to 200 characters without control characters".to_owned(),
        ));
    }
    Ok(format!("api/{name}"))
}

/// Names a document sent without a name (tickets keep their keys): by its title, or, when it
/// has none of its own (it is then titled after its origin), by its content, titled by its
/// first line.
fn name_unnamed_document(artifact: &mut vigil_core::Artifact, origin: &str, content_hash: &str) {
    let document = matches!(
        artifact.format,
        vigil_core::SourceFormat::Markdown
            | vigil_core::SourceFormat::Html
            | vigil_core::SourceFormat::ConfluenceStorage
    );
    if !document {
        return;
    }
    let titled = artifact.title != origin;
    if !titled {
        let first = artifact
            .sections
            .iter()
            .flat_map(|s| s.text.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("Untitled document");
        artifact.title = first.chars().take(80).collect();
    }
    artifact.id = unnamed_document_id(titled.then_some(&artifact.title), content_hash);
}

/// An unnamed document's artifact id: `doc-` and the words of its title, or its content hash
/// when it has no title.
fn unnamed_document_id(title: Option<&String>, content_hash: &str) -> String {
    let words: Vec<String> = title
        .map(String::as_str)
        .unwrap_or("")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let slug: String = words.join("-").chars().take(80).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("doc-{content_hash}")
    } else {
        format!("doc-{slug}")
    }
}

/// Submits an artifact in any supported format and returns its reviews.
#[utoipa::path(post, path = "/api/v1/artifacts", tag = "reviews", params(SubmitQuery),
    request_body(content = String, description = "Markdown, HTML, Confluence storage format, \
        or Jira, GitHub, Azure DevOps or Linear JSON; the format is detected from content",
        content_type = "text/plain"),
    responses(
        (status = 201, description = "Analysed and stored", body = Submitted),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 413, description = "Over the body limit", body = ErrorBody),
        (status = 422, description = "Not an artifact the analysis can read", body = ErrorBody)))]
pub async fn submit_artifact(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: QueryParams,
    body: Body,
) -> Result<(StatusCode, Json<Submitted>)> {
    let q: SubmitQuery = query(raw)?;
    let origin = submission_origin(q.name.as_deref())?;
    let named = q.name.is_some();
    let bytes = read_body(
        body,
        &headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;

    let engine = state.engine.clone();
    let started = std::time::Instant::now();
    let analysed = blocking(move || {
        let mut artifacts = vigil_analysis::normalize::normalize(&origin, &bytes, engine.limits())?;
        if !named {
            let hash = crate::auth::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)[..8]);
            for artifact in &mut artifacts {
                name_unnamed_document(artifact, &origin, &hash);
            }
        }
        Ok::<_, Error>(crate::app::review_each(&engine, artifacts))
    })
    .await;
    state.metrics.analysis(started.elapsed(), analysed.is_ok());
    let mut stored = Vec::new();
    for (artifact, review) in analysed? {
        // A name must not turn another tool's artifact (a ticket) into a document.
        if let Ok(Some(existing)) = state.reviews.artifact(&artifact.id).await {
            if existing.tool != artifact.format.as_str() {
                return Err(Error::Conflict(format!(
                    "artifact `{}` is a {} artifact; this body is {}: choose another name",
                    artifact.id,
                    existing.tool,
                    artifact.format.as_str()
                )));
            }
        }
        let entry = StoredReview {
            id: review_id(&review),
            source: "api".to_owned(),
            created_ms: now_ms(),
            review,
        };
        let id = state.reviews.put_analysis(entry, artifact).await?.review_id;
        // The stored review carries what memory changed (feedback on scores).
        stored.push(load_review(&state, id).await?);
    }

    let reviews = stored.iter().map(ReviewSummary::of).collect();
    Ok((StatusCode::CREATED, Json(Submitted { reviews })))
}

/// Paging parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Skip this many (default 0).
    pub offset: Option<usize>,
    /// At most this many (default 50, at most 500; 0 gives the total alone).
    pub limit: Option<usize>,
}

/// A page of reviews.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    /// Matching reviews in total.
    pub total: usize,
    /// This page.
    pub items: Vec<ReviewSummary>,
}

/// Lists the latest review of each artifact, newest first.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "reviews", params(Paging),
    responses((status = 200, description = "A page of reviews", body = ReviewPage)))]
pub async fn list_reviews(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<ReviewPage>> {
    let paging: Paging = query(raw)?;

    let (offset, limit) = page_bounds(paging.offset, paging.limit);
    let page = state.reviews.reviews(offset, limit).await?;

    let items = page.items.iter().map(ReviewSummary::of).collect();
    Ok(Json(ReviewPage {
        total: page.total,
        items,
    }))
}

/// A review in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDetail {
    /// Review id.
    pub id: String,
    /// `api` or `webhook:CONNECTOR`.
    pub source: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// The analysis: diagram, findings with scores and evidence, attack paths.
    #[schema(value_type = Object)]
    pub review: Review,
}

pub(crate) async fn load_review(state: &Arc<AppState>, id: String) -> Result<StoredReview> {
    state
        .reviews
        .review(&id)
        .await?
        .ok_or(Error::NotFound { kind: "review", id })
}

/// Reads one review.
#[utoipa::path(get, path = "/api/v1/reviews/{id}", tag = "reviews",
    params(("id" = String, Path, description = "Review id")),
    responses((status = 200, description = "The review", body = ReviewDetail),
        (status = 404, description = "No such review", body = ErrorBody)))]
pub async fn get_review(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ReviewDetail>> {
    let stored = load_review(&state, id).await?;

    Ok(Json(ReviewDetail {
        id: stored.id,
        source: stored.source,
        created_ms: stored.created_ms,
        review: stored.review,
    }))
}

/// Format of a diagram.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DfdQuery {
    /// `svg` (default) or `mermaid`.
    pub format: Option<String>,
}

/// The review's data-flow diagram as SVG or Mermaid.
#[utoipa::path(get, path = "/api/v1/reviews/{id}/dfd", tag = "reviews",
    params(("id" = String, Path, description = "Review id"), DfdQuery),
    responses((status = 200, description = "image/svg+xml or text/vnd.mermaid", body = String),
        (status = 404, description = "No such review", body = ErrorBody)))]
pub async fn review_dfd(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: QueryParams,
) -> Result<Response> {
    let q: DfdQuery = query(raw)?;
    let stored = load_review(&state, id).await?;

    let (content_type, text) = match q.format.as_deref().unwrap_or("svg") {
        "svg" => (
            "image/svg+xml",
            svg::render_svg(std::slice::from_ref(&stored.review)),
        ),
        "mermaid" => (
            "text/vnd.mermaid; charset=utf-8",
            mermaid::flowchart(&stored.review.dfd),
        ),
        other => {
            return Err(Error::BadRequest(format!(
                "unknown diagram format `{other}`"
            )))
        }
    };
    // Artifact text is drawn into the diagram: opened directly in a browser, the SVG may style
    // itself but never run script or load anything.
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, DIAGRAM_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((headers, text).into_response())
}

/// The policy a diagram is served with: its own inline styles, nothing else.
const DIAGRAM_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Format of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `sarif`, `csv` or `json` (default).
    pub format: Option<String>,
}

/// Exports one review's findings as SARIF 2.1.0, CSV or JSON.
#[utoipa::path(get, path = "/api/v1/reviews/{id}/export", tag = "exports",
    params(("id" = String, Path, description = "Review id"), ExportQuery),
    responses((status = 200, description = "The export", body = String),
        (status = 404, description = "No such review", body = ErrorBody)))]
pub async fn export_review(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: QueryParams,
) -> Result<Response> {
    let q: ExportQuery = query(raw)?;
    let stored = load_review(&state, id.clone()).await?;

    let filter = FindingFilter {
        review: Some(id),
        ..FindingFilter::default()
    };
    let mut records = all_findings(state.reviews.as_ref(), filter).await?;
    // An older version of an artifact has no workflow state of its own: its findings are
    // exported as raised.
    if records.is_empty() {
        records = stored
            .review
            .findings
            .iter()
            .map(|f| record_of(&stored, f))
            .collect();
    }
    render_export(q.format.as_deref(), &[stored.review], &records)
}

fn record_of(stored: &StoredReview, finding: &Finding) -> FindingRecord {
    FindingRecord {
        review_id: stored.id.clone(),
        artifact: stored.review.artifact.clone(),
        artifact_title: stored.review.title.clone(),
        tool: stored.review.format.as_str().to_owned(),
        project: stored.review.meta.project.clone(),
        team: stored.review.meta.team.clone(),
        finding: finding.clone(),
        state: FindingState::default(),
        recall: None,
    }
}

/// Exports the findings matching the filters (every page) as SARIF 2.1.0, CSV or JSON.
#[utoipa::path(get, path = "/api/v1/findings/export", tag = "exports",
    params(FindingFilter, ExportQuery),
    responses((status = 200, description = "The export", body = String),
        (status = 400, description = "Bad filter", body = ErrorBody)))]
pub async fn export_findings(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Response> {
    let mut params = raw.map_err(|e| Error::BadRequest(e.body_text()))?.0;
    let format = params
        .as_object_mut()
        .and_then(|m| m.remove("format"))
        .and_then(|v| v.as_str().map(str::to_owned));
    let filter: FindingFilter = query(Ok(Query(params)))?;

    let records = all_findings(state.reviews.as_ref(), filter).await?;
    let reviews = reviews_of(state.reviews.as_ref(), &records).await?;

    render_export(format.as_deref(), &reviews, &records)
}

/// The reviews the records belong to, each holding only the records' findings.
async fn reviews_of(
    store: &dyn crate::store::ReviewStore,
    records: &[FindingRecord],
) -> Result<Vec<Review>> {
    let mut reviews: Vec<(String, Review)> = Vec::new();
    for rec in records {
        if !reviews.iter().any(|(id, _)| *id == rec.review_id) {
            if let Some(stored) = store.review(&rec.review_id).await? {
                let mut review = stored.review;
                review.findings.clear();
                reviews.push((rec.review_id.clone(), review));
            }
        }
        if let Some((_, review)) = reviews.iter_mut().find(|(id, _)| *id == rec.review_id) {
            review.findings.push(rec.finding.clone());
        }
    }
    Ok(reviews.into_iter().map(|(_, r)| r).collect())
}

async fn all_findings(
    store: &dyn crate::store::ReviewStore,
    mut filter: FindingFilter,
) -> Result<Vec<FindingRecord>> {
    let mut out = Vec::new();
    filter.offset = Some(0);
    filter.limit = Some(500);
    loop {
        let page = store.findings(&filter).await?;
        let n = page.items.len();
        out.extend(page.items);
        if n == 0 || out.len() >= page.total {
            return Ok(out);
        }
        filter.offset = Some(out.len());
    }
}

fn render_export(
    format: Option<&str>,
    reviews: &[Review],
    records: &[FindingRecord],
) -> Result<Response> {
    match format.unwrap_or("json") {
        "sarif" => Ok((
            [(header::CONTENT_TYPE, "application/sarif+json")],
            sarif::render_sarif(reviews),
        )
            .into_response()),
        "json" => {
            let views: Vec<FindingView> = records.iter().cloned().map(FindingView::from).collect();
            Ok(Json(views).into_response())
        }
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::csv::findings_csv(records),
        )
            .into_response()),
        other => Err(Error::BadRequest(format!(
            "unknown export format `{other}`"
        ))),
    }
}

/// A finding with its artifact and workflow state.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    /// Finding id (stable across review versions).
    pub id: String,
    /// Review it belongs to.
    pub review_id: String,
    /// Artifact id.
    pub artifact: String,
    /// Artifact title.
    pub artifact_title: String,
    /// Source format.
    pub tool: String,
    /// Project.
    pub project: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Rule id.
    pub rule: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Score 0-10.
    pub score: f64,
    /// Workflow state.
    pub state: FindingState,
    /// The finding in full: rationale, mitigations, mappings, score factors, evidence.
    #[schema(value_type = Object)]
    pub finding: Finding,
    /// What memory said when the review was recorded: `disposition` (open, accepted,
    /// false_positive, reopened, controlled), the `decision_id` that set it, `reason`, and
    /// `precedents` (past mitigations of similar findings: decision_id, external_key,
    /// rationale, link, similarity, summary). Absent when memory was not consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub recall: Option<FindingRecall>,
}

impl From<FindingRecord> for FindingView {
    fn from(r: FindingRecord) -> FindingView {
        FindingView {
            id: r.finding.id.clone(),
            review_id: r.review_id,
            artifact: r.artifact,
            artifact_title: r.artifact_title,
            tool: r.tool,
            project: r.project,
            team: r.team,
            rule: r.finding.rule.clone(),
            title: r.finding.title.clone(),
            severity: r.finding.score.severity.as_str().to_owned(),
            score: r.finding.score.value,
            state: r.state,
            finding: r.finding,
            recall: r.recall,
        }
    }
}

/// A page of findings.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingPage {
    /// Matching findings in total.
    pub total: usize,
    /// This page, highest score first.
    pub items: Vec<FindingView>,
}

/// Lists findings of each artifact's latest review, filtered, highest score first.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", params(FindingFilter),
    responses((status = 200, description = "A page of findings", body = FindingPage),
        (status = 400, description = "Bad filter", body = ErrorBody)))]
pub async fn list_findings(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<FindingPage>> {
    let filter: FindingFilter = query(raw)?;

    let page = state.reviews.findings(&filter).await?;

    Ok(Json(FindingPage {
        total: page.total,
        items: page.items.into_iter().map(FindingView::from).collect(),
    }))
}

/// Reads one finding.
#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "findings",
    params(("id" = String, Path, description = "Finding id")),
    responses((status = 200, description = "The finding", body = FindingView),
        (status = 404, description = "No such finding", body = ErrorBody)))]
pub async fn get_finding(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<FindingView>> {
    let found = state.reviews.finding(&id).await?;

    found
        .map(|r| Json(FindingView::from(r)))
        .ok_or(Error::NotFound {
            kind: "finding",
            id,
        })
}

/// Longest triage comment accepted, in characters.
const MAX_COMMENT_CHARS: usize = 10_000;

/// Changes a finding's status or assignee, or comments on it. A risk is not accepted here but
/// by a decision (`POST /api/v1/decisions`, kind `risk_accepted`, with owner, approver and
/// expiry), which sets the status.
#[utoipa::path(post, path = "/api/v1/findings/{id}/triage", tag = "findings",
    params(("id" = String, Path, description = "Finding id")),
    request_body = Triage,
    responses((status = 200, description = "The new state", body = FindingState),
        (status = 400, description = "Malformed change, or risk_accepted (a decision's)",
            body = ErrorBody),
        (status = 404, description = "No such finding", body = ErrorBody)))]
pub async fn triage_finding(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FindingState>> {
    require_json(&headers)?;
    let bytes = read_body(
        body,
        &headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;
    let change: Triage =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;
    if let Some(comment) = &change.comment {
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(Error::BadRequest(format!(
                "a comment has at most {MAX_COMMENT_CHARS} characters"
            )));
        }
    }
    if let Some(assignee) = &change.assignee {
        if assignee.chars().count() > 200 || assignee.chars().any(char::is_control) {
            return Err(Error::BadRequest(
                "an assignee has at most 200 characters and no control characters".to_owned(),
            ));
        }
    }
    // Accepting a risk takes an owner, an approver and an end date: only a decision has them.
    if change.status == Some(FindingStatus::RiskAccepted) {
        return Err(Error::BadRequest(
            "a risk is accepted by a decision with owner, approver and expiry: POST \
             /api/v1/decisions with kind risk_accepted"
                .to_owned(),
        ));
    }

    let new_state = state
        .reviews
        .triage(&id, &change, &caller.name, now_ms())
        .await?;

    Ok(Json(new_state))
}

/// An inbox event without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxEventView {
    /// Inbox id.
    pub id: i64,
    /// Connector.
    pub connector: String,
    /// Tool.
    pub tool: String,
    /// Delivery id.
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// Status.
    pub status: EventStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Outcome of processing.
    pub outcome: Option<String>,
    /// Arrival, Unix milliseconds.
    pub received_ms: u64,
    /// Body size in bytes.
    pub bytes: usize,
}

impl From<InboxEvent> for InboxEventView {
    fn from(e: InboxEvent) -> InboxEventView {
        InboxEventView {
            id: e.id,
            connector: e.connector,
            tool: e.tool,
            delivery_id: e.delivery_id,
            event: e.event,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            outcome: e.outcome,
            received_ms: e.received_ms,
            bytes: e.body.len(),
        }
    }
}

/// Which inbox events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// pending, processing, done or dead (default: dead, the dead-letter list).
    pub status: Option<EventStatus>,
    /// At most this many (default 50, at most 500; 0 gives the total alone).
    pub limit: Option<usize>,
}

/// The inbox: depth by status and a list of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxView {
    /// Events per status.
    pub depth: QueueDepth,
    /// The events asked for, newest first.
    pub events: Vec<InboxEventView>,
}

/// The webhook inbox's depth and its dead-letter list (or events of another status).
#[utoipa::path(get, path = "/api/v1/inbox", tag = "webhooks", params(InboxQuery),
    responses((status = 200, description = "Depth and events", body = InboxView)))]
pub async fn inbox(
    State(state): State<Arc<AppState>>,
    raw: QueryParams,
) -> Result<Json<InboxView>> {
    let q: InboxQuery = query(raw)?;

    let status = q.status.unwrap_or(EventStatus::Dead);
    let (_, limit) = page_bounds(None, q.limit);
    let depth = state.inbox.depth().await?;
    let events = state.inbox.list(status, limit).await?;

    Ok(Json(InboxView {
        depth,
        events: events.into_iter().map(InboxEventView::from).collect(),
    }))
}

/// Puts a dead-lettered event back in the queue.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/retry", tag = "webhooks",
    params(("id" = i64, Path, description = "Inbox id")),
    responses((status = 202, description = "Queued again"),
        (status = 404, description = "No dead event with this id", body = ErrorBody)))]
pub async fn retry_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::BadRequest(format!("inbox id `{id}` is not a number")))?;
    let revived = state.inbox.revive(id).await?;

    if !revived {
        return Err(Error::NotFound {
            kind: "dead inbox event",
            id: id.to_string(),
        });
    }
    state.wake.notify_one();
    Ok(StatusCode::ACCEPTED)
}

/// Every API token (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "Tokens", body = Vec<TokenRecord>)))]
pub async fn list_tokens(State(state): State<Arc<AppState>>) -> Result<Json<Vec<TokenRecord>>> {
    Ok(Json(state.tokens.list().await?))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A created token: the secret is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer secret.
    pub token: String,
    /// The stored record.
    pub record: TokenRecord,
}

/// Creates an API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedToken),
        (status = 400, description = "Malformed", body = ErrorBody)))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    require_json(&headers)?;
    let bytes = read_body(
        body,
        &headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;
    let new: NewToken =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;

    let issued = issue_token(new.name.trim(), new.role, now_ms())?;
    state.tokens.insert(&issued.record).await?;
    tracing::info!(token = %issued.record.id, role = new.role.as_str(), "token created");

    let created = CreatedToken {
        token: issued.secret,
        record: issued.record,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No active token with this id", body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let revoked = state.tokens.revoke(&id, now_ms()).await?;

    if revoked {
        tracing::info!(token = %id, "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound { kind: "token", id })
    }
}
