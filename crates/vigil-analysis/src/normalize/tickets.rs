//! Planning-tool items in JSON: recognises Jira, GitHub, Azure DevOps and Linear shapes (and
//! their webhook or search envelopes), renders their text and fills their metadata.

use vigil_core::{Artifact, ArtifactMeta, SourceFormat};

use super::json::{self, JsonStr, Kind, Value};
use super::sections::SectionBuilder;
use super::{adf, file_stem, html, markdown, wiki, Limits};
use crate::error::{Error, Result};

const SUPPORTED: &str =
    "expected a Jira issue or search result (REST v2/v3), a GitHub issue or pull \
request, an Azure DevOps work item, or a Linear issue (plain or GraphQL-wrapped)";

/// Normalizes a JSON file into the artifacts it holds.
pub(crate) fn normalize(origin: &str, text: &str, limits: &Limits) -> Result<Vec<Artifact>> {
    let root = json::parse(origin, text, limits.max_depth)?;
    let items = items(&root).ok_or_else(|| Error::UnknownShape {
        origin: origin.to_string(),
        message: SUPPORTED.to_string(),
    })?;
    items
        .into_iter()
        .map(|(shape, v)| artifact(origin, shape, v, limits))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Jira,
    Github,
    Ado,
    Linear,
}

fn shape(v: &Value) -> Option<Shape> {
    v.as_object()?;
    let has = |k: &str| v.get(k).is_some();
    if has("key") && v.at(&["fields", "summary"]).is_some() {
        Some(Shape::Jira)
    } else if v.at(&["fields", "System.Title"]).is_some() {
        Some(Shape::Ado)
    } else if has("number") && has("title") && has("body") {
        Some(Shape::Github)
    } else if has("identifier") && has("title") {
        Some(Shape::Linear)
    } else {
        None
    }
}

/// The items in `root` with their shapes; None when the shape is not recognised.
fn items(root: &Value) -> Option<Vec<(Shape, &Value)>> {
    if let Some(s) = shape(root) {
        return Some(vec![(s, root)]);
    }
    if let Some(list) = root.as_array() {
        return all(list).filter(|l| !l.is_empty());
    }
    // Search results and batches.
    for key in ["issues", "value"] {
        if let Some(list) = root.get(key).and_then(Value::as_array) {
            return all(list);
        }
    }
    // Webhook envelopes and GraphQL wrappers.
    let wrapped = [
        &["issue"][..],
        &["pull_request"],
        &["resource", "revision"],
        &["resource"],
        &["data", "issue"],
        &["data"],
    ];
    for path in wrapped {
        if let Some(s) = root.at(path).and_then(shape) {
            return Some(vec![(s, root.at(path)?)]);
        }
    }
    let nodes = root
        .at(&["data", "issues", "nodes"])
        .and_then(Value::as_array)?;
    all(nodes)
}

fn all(list: &[Value]) -> Option<Vec<(Shape, &Value)>> {
    list.iter().map(|v| shape(v).map(|s| (s, v))).collect()
}

fn artifact(origin: &str, shape: Shape, v: &Value, limits: &Limits) -> Result<Artifact> {
    let mut b = SectionBuilder::new();
    let (format, title, meta) = match shape {
        Shape::Jira => jira(origin, v, &mut b, limits)?,
        Shape::Github => github(v, &mut b),
        Shape::Ado => ado(origin, v, &mut b, limits)?,
        Shape::Linear => linear(v, &mut b),
    };
    let sections = b.finish();
    if sections.is_empty() {
        return Err(Error::NoText {
            origin: origin.to_string(),
        });
    }
    let id = meta.key.clone().unwrap_or_else(|| file_stem(origin));
    Ok(Artifact {
        id,
        title,
        format,
        origin: origin.to_string(),
        meta,
        sections,
    })
}

/// The title as a section of its own, so it can be quoted.
fn title_section(b: &mut SectionBuilder, title: Option<&JsonStr>) -> String {
    let Some(title) = title else {
        return String::new();
    };
    let src = title.source();
    b.collapsed(&src, 0..src.text.len());
    b.finish_section();
    title.value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::scalar)
}

fn name(v: Option<&Value>) -> Option<String> {
    text(v.and_then(|v| v.get("name")))
}

fn date(v: Option<&Value>) -> Option<String> {
    text(v).map(|d| {
        if d.len() > 10 && d.as_bytes()[4] == b'-' {
            d[..10].to_string()
        } else {
            d
        }
    })
}

fn names(v: Option<&Value>) -> Vec<String> {
    let list = match v {
        Some(v) if v.as_array().is_some() => v.as_array().unwrap_or_default(),
        Some(v) => v.get("nodes").and_then(Value::as_array).unwrap_or_default(),
        None => &[],
    };
    list.iter()
        .filter_map(|l| text(Some(l)).or_else(|| name(Some(l))))
        .collect()
}

fn jira(
    origin: &str,
    v: &Value,
    b: &mut SectionBuilder,
    limits: &Limits,
) -> Result<(SourceFormat, String, ArtifactMeta)> {
    let fields = v.get("fields");
    let field = |k: &str| fields.and_then(|f| f.get(k));
    let self_url = text(v.get("self")).unwrap_or_default();
    let description = field("description");
    let format = match description.map(|d| &d.kind) {
        Some(Kind::Str(_)) => SourceFormat::JiraV2,
        Some(Kind::Object(_)) => SourceFormat::JiraV3,
        _ if self_url.contains("/rest/api/2/") => SourceFormat::JiraV2,
        _ => SourceFormat::JiraV3,
    };

    let title = title_section(b, field("summary").and_then(Value::as_json_str));
    match description.map(|d| &d.kind) {
        Some(Kind::Str(s)) => wiki::render(&s.source(), b),
        Some(Kind::Null) | None => {}
        Some(_) => adf::render(description.unwrap_or(v), b, origin)?,
    }
    let _ = limits;

    let key = text(v.get("key"));
    let url = self_url
        .find("/rest/api/")
        .zip(key.as_ref())
        .map(|(at, key)| format!("{}/browse/{key}", &self_url[..at]));
    let components = names(field("components"));
    let meta = ArtifactMeta {
        key,
        url,
        project: name(field("project"))
            .or_else(|| text(field("project").and_then(|p| p.get("key")))),
        team: (!components.is_empty()).then(|| components.join(", ")),
        item_type: name(field("issuetype")),
        status: name(field("status")),
        priority: name(field("priority")),
        due_date: date(field("duedate")),
        sprint: fields.and_then(jira_sprint),
        labels: names(field("labels")),
        updated: text(field("updated")),
    };
    Ok((format, title, meta))
}

/// The sprint from a `customfield_*` holding sprint objects (or v2's serialized sprint strings).
fn jira_sprint(fields: &Value) -> Option<String> {
    let custom = fields
        .as_object()?
        .iter()
        .filter(|(k, _)| k.starts_with("customfield_"));
    for (_, value) in custom {
        let list = match value.as_array() {
            Some(list) => list,
            None => std::slice::from_ref(value),
        };
        let sprint = list.iter().rev().find_map(|s| {
            if s.get("boardId").is_some()
                || s.get("state").is_some() && s.get("startDate").is_some()
            {
                return name(Some(s));
            }
            let raw = s.as_str()?;
            if !raw.contains("greenhopper.service.sprint.Sprint") {
                return None;
            }
            let start = raw.find(",name=")? + 6;
            let end = raw[start..].find(',').map_or(raw.len(), |e| start + e);
            Some(raw[start..end].to_string())
        });
        if sprint.is_some() {
            return sprint;
        }
    }
    None
}

fn github(v: &Value, b: &mut SectionBuilder) -> (SourceFormat, String, ArtifactMeta) {
    let is_pr = v.get("pull_request").is_some_and(|p| p.kind != Kind::Null)
        || (v.get("head").is_some() && v.get("base").is_some());
    let format = if is_pr {
        SourceFormat::GithubPullRequest
    } else {
        SourceFormat::GithubIssue
    };

    let title = title_section(b, v.get("title").and_then(Value::as_json_str));
    if let Some(body) = v.get("body").and_then(Value::as_json_str) {
        markdown::render(&body.source(), b);
    }

    let repo = text(v.get("repository_url"))
        .and_then(|u| {
            u.split_once("/repos/")
                .map(|(_, r)| r.trim_end_matches('/').to_string())
        })
        .or_else(|| {
            let html_url = text(v.get("html_url"))?;
            let path = html_url.split("://").nth(1)?;
            let parts: Vec<_> = path.split('/').collect();
            (parts.len() >= 3).then(|| format!("{}/{}", parts[1], parts[2]))
        });
    let number = text(v.get("number"));
    let meta = ArtifactMeta {
        key: repo
            .as_ref()
            .zip(number.as_ref())
            .map(|(r, n)| format!("{r}#{n}")),
        url: text(v.get("html_url")),
        project: repo,
        team: None,
        item_type: Some(if is_pr { "Pull request" } else { "Issue" }.to_string()),
        status: text(v.get("state")),
        priority: None,
        due_date: date(v.at(&["milestone", "due_on"])),
        sprint: None,
        labels: names(v.get("labels")),
        updated: text(v.get("updated_at")),
    };
    (format, title, meta)
}

fn ado(
    origin: &str,
    v: &Value,
    b: &mut SectionBuilder,
    limits: &Limits,
) -> Result<(SourceFormat, String, ArtifactMeta)> {
    let fields = v.get("fields");
    let field = |k: &str| fields.and_then(|f| f.get(k));

    let title = title_section(b, field("System.Title").and_then(Value::as_json_str));
    let parts = [
        ("System.Description", None),
        ("Microsoft.VSTS.TCM.ReproSteps", Some("Repro steps")),
        (
            "Microsoft.VSTS.Common.AcceptanceCriteria",
            Some("Acceptance criteria"),
        ),
    ];
    for (key, label) in parts {
        let Some(body) = field(key).and_then(Value::as_json_str) else {
            continue;
        };
        if let Some(label) = label {
            b.labelled_section(label);
        }
        html::render(&body.source(), b, origin, limits.max_depth)?;
    }

    let id = text(v.get("id"));
    let url = text(v.at(&["_links", "html", "href"])).or_else(|| text(v.get("url")));
    let labels = text(field("System.Tags"))
        .map(|t| {
            t.split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let meta = ArtifactMeta {
        key: id.map(|id| format!("#{id}")),
        url,
        project: text(field("System.TeamProject")),
        team: text(field("System.AreaPath")),
        item_type: text(field("System.WorkItemType")),
        status: text(field("System.State")),
        priority: text(field("Microsoft.VSTS.Common.Priority")),
        due_date: date(field("Microsoft.VSTS.Scheduling.DueDate"))
            .or_else(|| date(field("Microsoft.VSTS.Scheduling.TargetDate"))),
        sprint: text(field("System.IterationPath"))
            .and_then(|p| p.rsplit('\\').next().map(String::from))
            .filter(|s| !s.is_empty()),
        labels,
        updated: text(field("System.ChangedDate")),
    };
    Ok((SourceFormat::AzureDevopsWorkItem, title, meta))
}

fn linear(v: &Value, b: &mut SectionBuilder) -> (SourceFormat, String, ArtifactMeta) {
    let title = title_section(b, v.get("title").and_then(Value::as_json_str));
    if let Some(description) = v.get("description").and_then(Value::as_json_str) {
        markdown::render(&description.source(), b);
    }

    let cycle = v.get("cycle");
    let meta = ArtifactMeta {
        key: text(v.get("identifier")),
        url: text(v.get("url")),
        project: name(v.get("project")),
        team: name(v.get("team")).or_else(|| text(v.at(&["team", "key"]))),
        item_type: Some("Issue".to_string()),
        status: name(v.get("state")),
        priority: text(v.get("priorityLabel")).or_else(|| text(v.get("priority"))),
        due_date: date(v.get("dueDate")),
        sprint: name(cycle)
            .or_else(|| text(cycle.and_then(|c| c.get("number"))).map(|n| format!("Cycle {n}"))),
        labels: names(v.get("labels")),
        updated: text(v.get("updatedAt")),
    };
    (SourceFormat::LinearIssue, title, meta)
}
