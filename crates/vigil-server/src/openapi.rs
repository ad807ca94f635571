//! The OpenAPI document, generated from the handlers' annotations, and a self-contained
//! reference page rendered from it on the server (no script, no external assets), so it reads
//! the same on an air-gapped network.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{api, auth, console, hooks, knowledge, store};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Vigil API", description = "Design-time security review: submit artifacts, \
        read reviews and findings, triage, export; receive webhooks from planning tools."),
    paths(
        api::healthz, api::readyz, api::metrics,
        hooks::receive,
        api::submit_artifact, api::list_reviews, api::get_review, api::review_dfd,
        api::export_review, api::list_findings, api::export_findings, api::get_finding,
        api::triage_finding, api::inbox, api::retry_event,
        api::list_tokens, api::create_token, api::revoke_token,
        knowledge::list_artifacts, knowledge::get_artifact, knowledge::artifact_versions,
        knowledge::artifact_version, knowledge::review_versions, knowledge::review_diff,
        knowledge::finding_history, knowledge::create_decision, knowledge::list_decisions,
        knowledge::get_decision, knowledge::search, knowledge::guidance, knowledge::dashboard,
        document, reference_page,
        console::login, console::current, console::logout, console::index, console::asset,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, auth::Role,
        store::FindingStatus, store::FindingState, store::TriageComment, store::Triage,
        store::QueueDepth, store::EventStatus, store::TokenRecord,
        hooks::HookAccepted, api::ReviewSummary, api::Submitted, api::ReviewPage,
        api::ReviewDetail, api::FindingView, api::FindingPage, api::InboxView,
        api::InboxEventView, api::NewToken, api::CreatedToken,
        knowledge::ArtifactView, knowledge::ArtifactPage, knowledge::ArtifactDetail,
        knowledge::ArtifactVersionView, knowledge::ArtifactText, knowledge::ReviewVersionView,
        knowledge::DiffEntryView, knowledge::ReviewDiff, knowledge::HistoryView,
        knowledge::DecisionKindName, knowledge::DecisionScopeName, knowledge::NewDecision,
        knowledge::DecisionView, knowledge::RecordedDecision, knowledge::DecisionPage,
        knowledge::ChunkView, knowledge::FindingHit, knowledge::DecisionHit,
        knowledge::SearchResults, knowledge::GuidanceRequest, knowledge::Requirement,
        knowledge::RelatedDecision, knowledge::Guidance, knowledge::TeamFiguresView,
        knowledge::WeekFiguresView, knowledge::DashboardView,
        console::Login, console::SessionInfo,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "reviews", description = "Artifacts in, reviews and diagrams out"),
        (name = "findings", description = "Findings, filters and triage"),
        (name = "exports", description = "SARIF, CSV and JSON"),
        (name = "artifacts", description = "Artifacts and their versions"),
        (name = "decisions", description = "Accepted risks, false positives, mitigations, \
            approved patterns and policies"),
        (name = "memory", description = "Search and guidance from what Vigil remembers"),
        (name = "dashboard", description = "Coverage, open findings, SLAs, mitigation time"),
        (name = "webhooks", description = "The durable webhook inbox"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "health", description = "Health, readiness and metrics"),
        (name = "docs", description = "This description"),
        (name = "console", description = "The web console: its page, files and login session"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "docs",
    responses((status = 200, description = "OpenAPI document", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A readable reference of every route, rendered from the OpenAPI document.
#[utoipa::path(get, path = "/api/docs", tag = "docs",
    responses((status = 200, description = "HTML page", body = String)))]
pub async fn reference_page() -> Response {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render_reference(&doc),
    )
        .into_response()
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;\
padding:0 1rem;color:#1b2330}h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d5dae1}\
.op{border:1px solid #d5dae1;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}\
.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}\
.get{color:#0b6e4f}.post{color:#1f4e9c}.delete{color:#a1262f}code{background:#f1f3f6;\
padding:0 .25rem;border-radius:3px}table{border-collapse:collapse;margin:.4rem 0}\
td,th{border:1px solid #e1e5ea;padding:.2rem .5rem;text-align:left;vertical-align:top}";

/// The reference page for an OpenAPI document.
pub fn render_reference(doc: &Value) -> String {
    let mut html = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<title>Vigil API reference</title><style>");
    html.push_str(STYLE);
    html.push_str("</style></head><body><h1>Vigil API reference</h1>");
    if let Some(d) = doc.pointer("/info/description").and_then(Value::as_str) {
        html.push_str(&format!("<p>{}</p>", escape(d)));
    }
    html.push_str(
        "<p>Every route but <code>/healthz</code>, <code>/readyz</code>, the console's page and \
         files and its login (<code>POST /api/v1/session</code>) needs \
         <code>Authorization: Bearer TOKEN</code> (or the console's session cookie); webhooks \
         are verified by their sender's signature instead. The machine-readable description is at \
         <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a>.</p>",
    );
    let empty = serde_json::Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for tag in doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = tag.get("name").and_then(Value::as_str).unwrap_or("");
        html.push_str(&format!("<h2 id=\"{0}\">{0}</h2>", escape(name)));
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let tagged = op
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|t| t == name));
                if tagged {
                    operation(&mut html, method, path, op);
                }
            }
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn operation(html: &mut String, method: &str, path: &str, op: &Value) {
    html.push_str(&format!(
        "<div class=\"op\"><span class=\"m {method}\">{}</span> <code>{}</code>",
        method.to_uppercase(),
        escape(path)
    ));
    let summary = op
        .get("summary")
        .or_else(|| op.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("");
    html.push_str(&format!("<p>{}</p>", escape(summary)));
    let params: Vec<&Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    if !params.is_empty() {
        html.push_str("<table><tr><th>parameter</th><th>in</th><th>meaning</th></tr>");
        for p in params {
            let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(field("name")),
                escape(field("in")),
                escape(field("description"))
            ));
        }
        html.push_str("</table>");
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        html.push_str("<table><tr><th>status</th><th>meaning</th></tr>");
        for (status, r) in responses {
            let d = r.get("description").and_then(Value::as_str).unwrap_or("");
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(status),
                escape(d)
            ));
        }
        html.push_str("</table>");
    }
    html.push_str("</div>");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
