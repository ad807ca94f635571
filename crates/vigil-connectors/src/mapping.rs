//! From a verified event to the artifact it carries.
//!
//! The analysis reads tickets in their tools' own JSON shapes, webhook envelopes included, so
//! most events hand their body on as it is; what this decides is which events carry an artifact
//! to review (an issue opened or edited) and which do not (a deletion, a project event).
//! Confluence events carry the page's storage-format body, handed on as XHTML.

use serde_json::Value;

use crate::error::Result;
use crate::verify::Tool;

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMapping {
    /// Analyse these bytes (any format the analysis detects from content).
    Artifact(Vec<u8>),
    /// Nothing to review in this event.
    Ignored(&'static str),
}

/// Maps the raw body of an event named `event` from `tool` to the artifact to analyse.
pub fn map_event(tool: Tool, event: &str, body: &[u8]) -> Result<EventMapping> {
    let json: Value = serde_json::from_slice(body)?;
    let action = json.get("action").and_then(Value::as_str).unwrap_or("");

    let mapping = match tool {
        Tool::Github => match event {
            "issues" | "pull_request" | "issue_comment" if action == "deleted" => {
                EventMapping::Ignored("the issue was deleted")
            }
            "issues" | "pull_request" | "issue_comment" => EventMapping::Artifact(body.to_vec()),
            _ => EventMapping::Ignored("event carries no issue or pull request"),
        },
        Tool::Jira if event.ends_with("issue_deleted") => {
            EventMapping::Ignored("the issue was deleted")
        }
        Tool::Jira if json.get("issue").is_some() => EventMapping::Artifact(body.to_vec()),
        Tool::Jira => EventMapping::Ignored("event carries no issue"),
        Tool::Confluence if event.ends_with("removed") || event.ends_with("trashed") => {
            EventMapping::Ignored("the page was removed")
        }
        Tool::Confluence => confluence_page(&json),
        Tool::AzureDevops if event == "workitem.deleted" => {
            EventMapping::Ignored("the work item was deleted")
        }
        Tool::AzureDevops if json.get("resource").is_some() => {
            EventMapping::Artifact(body.to_vec())
        }
        Tool::AzureDevops => EventMapping::Ignored("event carries no work item"),
        Tool::Linear if action == "remove" => EventMapping::Ignored("the issue was removed"),
        Tool::Linear if json.get("type").and_then(Value::as_str) == Some("Issue") => {
            EventMapping::Artifact(body.to_vec())
        }
        Tool::Linear => EventMapping::Ignored("event is not about an issue"),
    };
    Ok(mapping)
}

fn confluence_page(json: &Value) -> EventMapping {
    let page = json.get("page").unwrap_or(json);
    let Some(storage) = page.pointer("/body/storage/value").and_then(Value::as_str) else {
        return EventMapping::Ignored("event carries no page body");
    };
    let title = page
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("Untitled page");
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    EventMapping::Artifact(format!("<h1>{title}</h1>\n{storage}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_issue_events_carry_the_body() {
        let body = br#"{"action":"opened","issue":{"number":1,"title":"t","body":"b"}}"#;
        assert_eq!(
            map_event(Tool::Github, "issues", body).unwrap(),
            EventMapping::Artifact(body.to_vec())
        );
        assert!(matches!(
            map_event(Tool::Github, "push", body).unwrap(),
            EventMapping::Ignored(_)
        ));
        let deleted = br#"{"action":"deleted","issue":{}}"#;
        assert!(matches!(
            map_event(Tool::Github, "issues", deleted).unwrap(),
            EventMapping::Ignored(_)
        ));
    }

    #[test]
    fn confluence_pages_become_xhtml() {
        let body = br#"{"page":{"title":"A <b>","body":{"storage":{"value":"<p>x</p>"}}}}"#;
        let EventMapping::Artifact(bytes) =
            map_event(Tool::Confluence, "page_updated", body).unwrap()
        else {
            panic!("expected an artifact");
        };
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "<h1>A &lt;b&gt;</h1>\n<p>x</p>"
        );
    }

    #[test]
    fn removals_and_other_types_are_ignored() {
        let body = br#"{"action":"remove","type":"Issue"}"#;
        assert!(matches!(
            map_event(Tool::Linear, "Issue.remove", body).unwrap(),
            EventMapping::Ignored(_)
        ));
        assert!(map_event(Tool::Jira, "x", b"not json").is_err());
    }
}
