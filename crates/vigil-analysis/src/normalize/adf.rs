//! Atlassian Document Format (Jira Cloud descriptions) to sections. Text offsets come from the
//! span-preserving JSON parser; recursion is bounded by the JSON depth limit.

use super::json::{Kind, Value};
use super::sections::SectionBuilder;
use crate::error::{Error, Result};

#[derive(Default)]
struct Context {
    code: bool,
    rows: Vec<usize>,
}

/// Renders an ADF document into `b`. A value that is not a `doc` node is malformed.
pub(crate) fn render(doc: &Value, b: &mut SectionBuilder, origin: &str) -> Result<()> {
    if doc.get("type").and_then(Value::as_str) != Some("doc") {
        return Err(Error::Malformed {
            origin: origin.to_string(),
            format: "Atlassian Document Format",
            message: "the description is not a `doc` node".to_string(),
        });
    }
    node(doc, b, &mut Context::default());
    Ok(())
}

fn node(v: &Value, b: &mut SectionBuilder, ctx: &mut Context) {
    let Some(kind) = v.get("type").and_then(Value::as_str) else {
        return;
    };
    let attrs = v.get("attrs");
    match kind {
        "text" => {
            if let Some(text) = v.get("text").and_then(Value::as_json_str) {
                let src = text.source();
                if ctx.code {
                    b.text(&src, 0..src.text.len());
                } else {
                    b.collapsed(&src, 0..src.text.len());
                }
            }
        }
        "hardBreak" | "rule" => b.newline(),
        "mention" | "emoji" | "status" | "placeholder" => {
            attr_text(attrs, &["text", "shortName"], b)
        }
        "inlineCard" | "blockCard" | "embedCard" => attr_text(attrs, &["url"], b),
        "date" | "media" | "mediaInline" => {}
        "heading" => {
            let level = attrs
                .and_then(|a| a.get("level"))
                .and_then(Value::scalar)
                .and_then(|l| l.parse::<u8>().ok())
                .unwrap_or(1);
            let started = b.start_heading(level.clamp(1, 6));
            children(v, b, ctx);
            if started {
                b.end_heading();
            }
        }
        "codeBlock" => {
            b.newline();
            let outer = std::mem::replace(&mut ctx.code, true);
            children(v, b, ctx);
            ctx.code = outer;
            b.newline();
        }
        "tableRow" => {
            b.newline();
            ctx.rows.push(0);
            children(v, b, ctx);
            ctx.rows.pop();
            b.newline();
        }
        "tableHeader" | "tableCell" => {
            if let Some(cells) = ctx.rows.last_mut() {
                if *cells > 0 {
                    b.cell_separator();
                }
                *cells += 1;
            }
            b.enter_cell();
            children(v, b, ctx);
            b.leave_cell();
        }
        "paragraph" | "listItem" | "bulletList" | "orderedList" | "blockquote" | "panel"
        | "table" | "expand" | "nestedExpand" | "decisionList" | "decisionItem" | "taskList"
        | "taskItem" | "layoutSection" | "layoutColumn" | "mediaSingle" | "mediaGroup" => {
            b.newline();
            if matches!(kind, "expand" | "nestedExpand") {
                attr_text(attrs, &["title"], b);
                b.newline();
            }
            children(v, b, ctx);
            b.newline();
        }
        _ => children(v, b, ctx),
    }
}

/// Renders the `content` array; a node whose content is not an array is skipped.
fn children(v: &Value, b: &mut SectionBuilder, ctx: &mut Context) {
    if let Some(Kind::Array(items)) = v.get("content").map(|c| &c.kind) {
        for item in items {
            node(item, b, ctx);
        }
    }
}

/// Renders the first of `keys` that is a string attribute.
fn attr_text(attrs: Option<&Value>, keys: &[&str], b: &mut SectionBuilder) {
    let Some(attrs) = attrs else {
        return;
    };
    if let Some(text) = keys
        .iter()
        .find_map(|k| attrs.get(k).and_then(Value::as_json_str))
    {
        let src = text.source();
        b.collapsed(&src, 0..src.text.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::json;

    fn render_json(text: &str) -> Result<Vec<vigil_core::Section>> {
        let v = json::parse("t.json", text, 64)?;
        let mut b = SectionBuilder::new();
        render(&v, &mut b, "t.json")?;
        Ok(b.finish())
    }

    #[test]
    fn headings_lists_tables_and_code() {
        let text = r#"{"type":"doc","content":[
          {"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Flow"}]},
          {"type":"paragraph","content":[{"type":"text","text":"Caf\u00e9 ","marks":[{"type":"strong"}]},
             {"type":"text","text":"uses \"TLS\" "},{"type":"mention","attrs":{"text":"@Ana"}}]},
          {"type":"bulletList","content":[{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"one"}]}]}]},
          {"type":"table","content":[{"type":"tableRow","content":[
             {"type":"tableHeader","content":[{"type":"paragraph","content":[{"type":"text","text":"A"}]}]},
             {"type":"tableCell","content":[{"type":"paragraph","content":[{"type":"text","text":"B"}]}]}]}]},
          {"type":"codeBlock","content":[{"type":"text","text":"a: 1\nb: 2"}]},
          {"type":"paragraph","content":"not an array"},
          {"type":"paragraph","content":[{"type":"text"}]},
          {"type":"extension","content":[{"type":"text","text":"kept"}]}
        ]}"#;
        let s = render_json(text).unwrap();
        assert_eq!(s[0].heading_path, ["Flow"]);
        assert_eq!(
            s[0].text,
            "Flow\nCafé uses \"TLS\" @Ana\none\nA | B\na: 1\nb: 2\nkept"
        );
        let at = s[0].text.find("uses").unwrap();
        let r = s[0].original_range(at..at + 10);
        assert_eq!(&text[r], r#"uses \"TLS\""#);
    }

    #[test]
    fn not_a_doc_is_malformed() {
        assert!(matches!(
            render_json(r#"{"type":"paragraph"}"#),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(render_json("[1]"), Err(Error::Malformed { .. })));
    }
}
