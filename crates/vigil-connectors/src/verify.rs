//! Verifying who sent a webhook, by the scheme each tool uses, and naming the delivery so a
//! redelivered event is recognised.
//!
//! GitHub signs the raw body with HMAC-SHA256 in `X-Hub-Signature-256`; Jira and Confluence Data
//! Center do the same in `X-Hub-Signature`; Linear sends the bare hex HMAC in `Linear-Signature`
//! and a `webhookTimestamp` that must be recent; Azure DevOps has no signature, so its service
//! hooks are given Basic credentials or a custom header, compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Oldest Linear event accepted, by its `webhookTimestamp`, in milliseconds.
pub const LINEAR_MAX_AGE_MS: u64 = 60_000;

/// A tool that sends webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// GitHub and GitHub Enterprise Server.
    Github,
    /// Jira Cloud and Data Center.
    Jira,
    /// Confluence Data Center.
    Confluence,
    /// Azure DevOps Services and Server.
    AzureDevops,
    /// Linear.
    Linear,
}

impl Tool {
    /// The tool named in a webhook path (`github`, `jira`, `confluence`, `azure_devops` or
    /// `azure-devops`, `linear`).
    pub fn from_path(name: &str) -> Result<Tool> {
        match name {
            "github" => Ok(Tool::Github),
            "jira" => Ok(Tool::Jira),
            "confluence" => Ok(Tool::Confluence),
            "azure_devops" | "azure-devops" => Ok(Tool::AzureDevops),
            "linear" => Ok(Tool::Linear),
            other => Err(Error::UnknownTool(other.to_owned())),
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Github => "github",
            Tool::Jira => "jira",
            Tool::Confluence => "confluence",
            Tool::AzureDevops => "azure_devops",
            Tool::Linear => "linear",
        }
    }
}

/// `[connectors.NAME]`: one configured sender and the secret it is verified with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// The tool this connector receives from.
    pub tool: Tool,
    /// Shared secret of the HMAC signature (GitHub, Jira, Confluence, Linear).
    #[serde(default)]
    pub secret: Option<String>,
    /// Basic auth user name (Azure DevOps).
    #[serde(default)]
    pub basic_user: Option<String>,
    /// Basic auth password (Azure DevOps).
    #[serde(default)]
    pub basic_password: Option<String>,
    /// Name of a custom header carrying a shared value (Azure DevOps).
    #[serde(default)]
    pub header_name: Option<String>,
    /// Value the custom header must carry.
    #[serde(default)]
    pub header_value: Option<String>,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectorConfig")
            .field("tool", &self.tool)
            .field("secret", &redacted(&self.secret))
            .field("basic_user", &self.basic_user)
            .field("basic_password", &redacted(&self.basic_password))
            .field("header_name", &self.header_name)
            .field("header_value", &redacted(&self.header_value))
            .finish()
    }
}

/// A verified event: who sent it, its delivery id and its event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The sending tool.
    pub tool: Tool,
    /// Identifies the delivery: redeliveries and copies through several hooks share it.
    pub delivery_id: String,
    /// The event name (`issues`, `jira:issue_updated`, `workitem.updated`, `Issue.update`...).
    pub event: String,
}

/// Verifies an event sent to connector `name` and names its delivery. `header` looks a request
/// header up by lower-case name; `now_ms` is the current Unix time in milliseconds.
pub fn verify(
    name: &str,
    config: &ConnectorConfig,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_ms: u64,
) -> Result<Delivery> {
    match config.tool {
        Tool::Github => {
            const NAME: &str = "X-Hub-Signature-256";
            let sig = header("x-hub-signature-256").ok_or(Error::MissingHeader(NAME))?;
            check_hmac(name, config, prefixed(&sig, NAME)?, body)?;
        }
        Tool::Jira | Tool::Confluence => {
            const NAME: &str = "X-Hub-Signature";
            let sig = header("x-hub-signature").ok_or(Error::MissingHeader(NAME))?;
            check_hmac(name, config, prefixed(&sig, NAME)?, body)?;
        }
        Tool::Linear => {
            let sig = header("linear-signature").ok_or(Error::MissingHeader("Linear-Signature"))?;
            check_hmac(name, config, sig.trim(), body)?;
            check_linear_age(body, now_ms)?;
        }
        Tool::AzureDevops => check_shared_credentials(name, config, header)?,
    }

    let json: serde_json::Value = serde_json::from_slice(body)?;
    Ok(Delivery {
        tool: config.tool,
        delivery_id: delivery_id(config.tool, header, &json, body),
        event: event_name(config.tool, header, &json),
    })
}

/// The hex digest after `sha256=` in header `name`.
fn prefixed<'a>(value: &'a str, name: &'static str) -> Result<&'a str> {
    value
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Error::MissingHeader(name))
}

fn check_hmac(name: &str, config: &ConnectorConfig, hex_sig: &str, body: &[u8]) -> Result<()> {
    let secret = config
        .secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Unverifiable(name.to_owned()))?;
    let expected = decode_hex(hex_sig).ok_or_else(|| Error::BadSignature(name.to_owned()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::Unverifiable(name.to_owned()))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Error::BadSignature(name.to_owned()))
}

fn check_linear_age(body: &[u8], now_ms: u64) -> Result<()> {
    let json: serde_json::Value = serde_json::from_slice(body)?;
    let sent = json
        .get("webhookTimestamp")
        .and_then(serde_json::Value::as_u64)
        .ok_or(Error::MissingField("webhookTimestamp"))?;
    let age_ms = now_ms.abs_diff(sent);
    if age_ms > LINEAR_MAX_AGE_MS {
        return Err(Error::Stale {
            age_ms,
            future: sent > now_ms,
            max_ms: LINEAR_MAX_AGE_MS,
        });
    }
    Ok(())
}

fn check_shared_credentials(
    name: &str,
    config: &ConnectorConfig,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let bad = || Error::BadSignature(name.to_owned());
    let mut checked = false;
    if let (Some(user), Some(password)) = (&config.basic_user, &config.basic_password) {
        let auth = header("authorization").ok_or(Error::MissingHeader("Authorization"))?;
        let encoded = auth
            .trim()
            .strip_prefix("Basic ")
            .ok_or(Error::MissingHeader("Authorization"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let expected = format!("{user}:{password}");
        if !constant_time_eq(&decoded, expected.as_bytes()) {
            return Err(bad());
        }
        checked = true;
    }
    if let (Some(header_name), Some(value)) = (&config.header_name, &config.header_value) {
        let got = header(&header_name.to_ascii_lowercase()).ok_or_else(bad)?;
        if !constant_time_eq(got.as_bytes(), value.as_bytes()) {
            return Err(bad());
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(Error::Unverifiable(name.to_owned()))
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn delivery_id(
    tool: Tool,
    header: &dyn Fn(&str) -> Option<String>,
    json: &serde_json::Value,
    body: &[u8],
) -> String {
    let from_header = match tool {
        Tool::Github => header("x-github-delivery"),
        Tool::Jira | Tool::Confluence => header("x-atlassian-webhook-identifier"),
        Tool::Linear => header("linear-delivery"),
        Tool::AzureDevops => None,
    };
    let from_body = || match tool {
        // Data Center sends no delivery id: the issue, its update time and the event name
        // identify one change.
        Tool::Jira => {
            let issue = json.get("issue")?;
            let id = scalar(issue.get("id")?)?;
            let updated = issue
                .pointer("/fields/updated")
                .and_then(scalar)
                .unwrap_or_default();
            let event = json
                .get("webhookEvent")
                .and_then(scalar)
                .unwrap_or_default();
            Some(format!("{id}|{updated}|{event}"))
        }
        Tool::AzureDevops => json.get("id").and_then(scalar),
        _ => None,
    };
    from_header
        .filter(|id| !id.trim().is_empty() && id.len() <= 200)
        .or_else(from_body)
        .unwrap_or_else(|| format!("sha256:{}", hex(&Sha256::digest(body))))
}

fn event_name(
    tool: Tool,
    header: &dyn Fn(&str) -> Option<String>,
    json: &serde_json::Value,
) -> String {
    let name = match tool {
        Tool::Github => header("x-github-event"),
        Tool::Jira | Tool::Confluence => json
            .get("webhookEvent")
            .or_else(|| json.get("event"))
            .and_then(scalar),
        Tool::AzureDevops => json.get("eventType").and_then(scalar),
        Tool::Linear => {
            let kind = json.get("type").and_then(scalar).unwrap_or_default();
            let action = json.get("action").and_then(scalar).unwrap_or_default();
            Some(format!("{kind}.{action}"))
        }
    };
    name.unwrap_or_else(|| "unknown".to_owned())
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    fn config(tool: Tool) -> ConnectorConfig {
        ConnectorConfig {
            tool,
            secret: Some("s3cret".to_owned()),
            basic_user: None,
            basic_password: None,
            header_name: None,
            header_value: None,
        }
    }

    fn headers(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn github_signature_and_delivery() {
        let body = br#"{"action":"opened","issue":{"id":1}}"#;
        let h = headers(vec![
            (
                "x-hub-signature-256",
                format!("sha256={}", sign("s3cret", body)),
            ),
            ("x-github-delivery", "abc-123".to_owned()),
            ("x-github-event", "issues".to_owned()),
        ]);
        let d = verify("gh", &config(Tool::Github), &h, body, 0).unwrap();
        assert_eq!(d.delivery_id, "abc-123");
        assert_eq!(d.event, "issues");

        let tampered = br#"{"action":"opened","issue":{"id":2}}"#;
        let err = verify("gh", &config(Tool::Github), &h, tampered, 0).unwrap_err();
        assert!(matches!(err, Error::BadSignature(_)), "{err}");
        let none = headers(vec![]);
        assert!(verify("gh", &config(Tool::Github), &none, body, 0).is_err());
    }

    #[test]
    fn jira_without_delivery_id_uses_issue_and_update_time() {
        let body =
            br#"{"webhookEvent":"jira:issue_updated","issue":{"id":"10","fields":{"updated":"t1"}}}"#;
        let h = headers(vec![(
            "x-hub-signature",
            format!("sha256={}", sign("s3cret", body)),
        )]);
        let d = verify("jira", &config(Tool::Jira), &h, body, 0).unwrap();
        assert_eq!(d.delivery_id, "10|t1|jira:issue_updated");
    }

    #[test]
    fn linear_rejects_stale_events() {
        let body = br#"{"type":"Issue","action":"create","webhookTimestamp":1000000}"#;
        let h = headers(vec![
            ("linear-signature", sign("s3cret", body)),
            ("linear-delivery", "d-1".to_owned()),
        ]);
        let d = verify("lin", &config(Tool::Linear), &h, body, 1_030_000).unwrap();
        assert_eq!(
            (d.delivery_id.as_str(), d.event.as_str()),
            ("d-1", "Issue.create")
        );
        let err = verify("lin", &config(Tool::Linear), &h, body, 1_100_001).unwrap_err();
        assert!(matches!(err, Error::Stale { future: false, .. }), "{err}");
        let err = verify("lin", &config(Tool::Linear), &h, body, 100).unwrap_err();
        assert!(err.to_string().contains("ahead of this clock"), "{err}");
        let bare = br#"{"type":"Issue","action":"create"}"#;
        let h = headers(vec![("linear-signature", sign("s3cret", bare))]);
        let err = verify("lin", &config(Tool::Linear), &h, bare, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing or malformed body field `webhookTimestamp`"
        );
    }

    #[test]
    fn a_malformed_signature_names_its_own_header() {
        let body = br#"{"action":"opened"}"#;
        let h = headers(vec![("x-hub-signature-256", "md5=abc".to_owned())]);
        let err = verify("gh", &config(Tool::Github), &h, body, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing or malformed header `X-Hub-Signature-256`"
        );
    }

    #[test]
    fn azure_devops_basic_auth_and_custom_header() {
        let mut c = config(Tool::AzureDevops);
        c.secret = None;
        let body = br#"{"id":"n-1","eventType":"workitem.updated"}"#;
        assert!(matches!(
            verify("ado", &c, &headers(vec![]), body, 0),
            Err(Error::Unverifiable(_))
        ));

        c.basic_user = Some("vigil".to_owned());
        c.basic_password = Some("pw".to_owned());
        let good = base64::engine::general_purpose::STANDARD.encode("vigil:pw");
        let d = verify(
            "ado",
            &c,
            &headers(vec![("authorization", format!("Basic {good}"))]),
            body,
            0,
        )
        .unwrap();
        assert_eq!(
            (d.delivery_id.as_str(), d.event.as_str()),
            ("n-1", "workitem.updated")
        );
        let bad = base64::engine::general_purpose::STANDARD.encode("vigil:nope");
        let h = headers(vec![("authorization", format!("Basic {bad}"))]);
        assert!(matches!(
            verify("ado", &c, &h, body, 0),
            Err(Error::BadSignature(_))
        ));

        c.basic_user = None;
        c.header_name = Some("X-Vigil-Key".to_owned());
        c.header_value = Some("k".to_owned());
        assert!(verify(
            "ado",
            &c,
            &headers(vec![("x-vigil-key", "k".to_owned())]),
            body,
            0
        )
        .is_ok());
        assert!(verify(
            "ado",
            &c,
            &headers(vec![("x-vigil-key", "j".to_owned())]),
            body,
            0
        )
        .is_err());
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        assert!(!format!("{:?}", config(Tool::Github)).contains("s3cret"));
    }
}
