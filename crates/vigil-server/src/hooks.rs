//! `POST /hooks/{tool}/{connector}`: the webhook inbox's front door. The sender is verified by
//! its tool's scheme before anything is kept; a verified event is written durably and only then
//! acknowledged with 202. Redeliveries (same delivery id) are acknowledged without being stored
//! again.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use vigil_connectors::{verify, Tool};

use crate::api::{read_body, require_json};
use crate::app::{now_ms, AppState};
use crate::console::ClientAddr;
use crate::error::{Error, Result};
use crate::store::{Enqueued, NewEvent};

/// The answer to an accepted webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookAccepted {
    /// Inbox id of the event.
    pub id: i64,
    /// The delivery id it was de-duplicated on.
    pub delivery_id: String,
    /// True when this delivery had already been received; nothing new was stored.
    pub duplicate: bool,
}

/// Receives a webhook event.
#[utoipa::path(
    post,
    path = "/hooks/{tool}/{connector}",
    tag = "webhooks",
    params(
        ("tool" = String, Path, description = "github, jira, confluence, azure_devops or linear"),
        ("connector" = String, Path, description = "Connector name from [connectors.NAME]"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "The event exactly as the tool sends it"),
    responses(
        (status = 202, description = "Stored durably (or already stored)", body = HookAccepted),
        (status = 400, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 401, description = "Signature or credentials do not verify", body = crate::error::ErrorBody),
        (status = 404, description = "No such connector for this tool", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = crate::error::ErrorBody),
        (status = 415, description = "Not application/json", body = crate::error::ErrorBody),
        (status = 503, description = "Too many webhooks in flight; retry after the Retry-After \
            seconds", body = crate::error::ErrorBody),
    ),
    security(()),
)]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path((tool, connector)): Path<(String, String)>,
    request: Request,
) -> Result<(StatusCode, Json<HookAccepted>)> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let client = ClientAddr::ip_of(&parts.extensions);
    let tool_kind = Tool::from_path(&tool).map_err(Error::Unverified)?;
    let config = state
        .connectors
        .get(&connector)
        .filter(|c| c.tool == tool_kind)
        .ok_or_else(|| Error::UnknownConnector {
            tool: tool.clone(),
            connector: connector.clone(),
        })?;
    let outcome = accept(&state, &connector, config, &headers, body, client).await;
    let label = match &outcome {
        Ok((Enqueued::Accepted(_), _)) => "accepted",
        Ok((Enqueued::Duplicate(_), _)) => "duplicate",
        Err(_) => "rejected",
    };
    state.metrics.webhook(tool_kind.as_str(), label);

    let (id, duplicate, delivery_id) = match outcome? {
        (Enqueued::Accepted(id), delivery) => {
            state.wake.notify_one();
            (id, false, delivery)
        }
        (Enqueued::Duplicate(id), delivery) => (id, true, delivery),
    };
    let accepted = HookAccepted {
        id,
        delivery_id,
        duplicate,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn accept(
    state: &AppState,
    connector: &str,
    config: &vigil_connectors::ConnectorConfig,
    headers: &HeaderMap,
    body: Body,
    client: Option<IpAddr>,
) -> Result<(Enqueued, String)> {
    require_json(headers)?;
    let _place = state.intake.admit(client)?;
    let bytes = read_body(
        body,
        headers,
        state.config.body_limit,
        state.config.body_timeout(),
    )
    .await?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let delivery = verify(connector, config, &header, &bytes, now_ms()).map_err(|e| {
        let client = client.map(|c| c.to_string());
        tracing::warn!(connector, client, reason = %e, "webhook rejected");
        Error::Unverified(e)
    })?;

    let event = NewEvent {
        connector: connector.to_owned(),
        tool: delivery.tool.as_str().to_owned(),
        delivery_id: delivery.delivery_id.clone(),
        event: delivery.event,
        body: bytes.to_vec(),
        received_ms: now_ms(),
    };
    let enqueued = state.intake.submit(event).await?;
    Ok((enqueued, delivery.delivery_id))
}
