//! The chat template: the GGUF's `tokenizer.chat_template` (Jinja, as Hugging Face renders it)
//! turned into the prompt text with minijinja.
//!
//! Templates are rendered the way `transformers` does: blocks trimmed (`trim_blocks`,
//! `lstrip_blocks`), `raise_exception(message)` failing the render, `strftime_now(format)` for
//! templates that print today's date, Python string methods (`.strip()`, `.startswith()`), and
//! the variables `messages`, `add_generation_prompt`, `bos_token` and `eos_token`.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, Value};
use serde::Serialize;

use super::ChatMessage;
use crate::{Error, Result};

/// ChatML, for a GGUF that carries no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + \
     message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if \
     add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat_template";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    model: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("model", &self.model)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    messages: &'a [ChatMessage],
    add_generation_prompt: bool,
    bos_token: &'a str,
    eos_token: &'a str,
}

impl ChatTemplate {
    /// Compiles `source`; `model` names the model in errors; the BOS and EOS tokens are the
    /// texts the template may print.
    pub fn new(source: &str, model: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error(model, &e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| template_error(model, &e))?;
        Ok(ChatTemplate {
            env,
            model: model.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The prompt text for these messages, ending with the assistant's turn opened when
    /// `add_generation_prompt` is set.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error(&self.model, &e))?;
        let context = TemplateContext {
            messages,
            add_generation_prompt,
            bos_token: &self.bos_token,
            eos_token: &self.eos_token,
        };
        template
            .render(Value::from(Serde(&context)))
            .map_err(|e| template_error(&self.model, &e))
    }
}

fn template_error(model: &str, error: &minijinja::Error) -> Error {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    Error::ChatTemplate {
        model: model.to_owned(),
        message,
    }
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// Today's date (UTC) in a `strftime` format; `%d %m %Y %y %b %B %H %M %S %%` are understood.
fn strftime_now(format: String) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(now, &format)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn format_utc(unix_seconds: u64, format: &str) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Year, month (1-12) and day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    fn messages() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Hi"),
        ]
    }

    #[test]
    fn chatml_renders_with_generation_prompt() {
        let template = ChatTemplate::new(CHATML_TEMPLATE, "m", "", "").unwrap();
        let text = template.render(&messages(), true).unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_fails_the_render() {
        let source = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}\
                      {% endif %}";
        let template = ChatTemplate::new(source, "m", "", "").unwrap();
        let error = template.render(&messages(), true).unwrap_err().to_string();
        assert!(error.contains("user first"), "{error}");
    }

    #[test]
    fn python_string_methods_namespace_and_bos_work() {
        let source = "{{ bos_token }}{% set ns = namespace(n=0) %}{% for m in messages %}\
                      {% set ns.n = ns.n + 1 %}{{ m['content'].strip().upper() }}\
                      {% if m['role'].startswith('sys') %}!{% endif %}{% endfor %}{{ ns.n }}\
                      {{ messages | tojson }}";
        let template = ChatTemplate::new(source, "m", "<s>", "</s>").unwrap();
        let text = template.render(&messages(), false).unwrap();
        assert!(text.starts_with("<s>BE BRIEF.!HI2"), "{text}");
        assert!(
            text.contains(r#"{"role": "system", "content": "Be brief."}"#),
            "{text}"
        );
    }

    #[test]
    fn dates_format_like_strftime() {
        // 2024-02-29 13:05:09 UTC
        assert_eq!(format_utc(1_709_211_909, "%d %b %Y"), "29 Feb 2024");
        assert_eq!(
            format_utc(1_709_211_909, "%Y-%m-%d %H:%M:%S %B %y %%"),
            "2024-02-29 13:05:09 February 24 %"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn a_bad_template_names_the_model() {
        let error = ChatTemplate::new("{% for %}", "tiny", "", "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("tiny"), "{error}");
    }
}
