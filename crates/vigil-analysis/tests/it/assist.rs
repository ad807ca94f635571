//! Integration tests of what models add: grounded proposals only, nothing removed, and the
//! deterministic review unchanged without models. The models here are scripted stand-ins; the
//! real models are exercised by the `vigil` binary's tests.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use vigil_analysis::assist::{
    ChatTurn, JsonChat, LlmReview, ModelError, ReviewerConfig, SemanticIndex, SentenceEmbedder,
};
use vigil_analysis::Engine;
use vigil_core::{FindingOrigin, Review};

fn fixture(dir: &str, name: &str) -> (String, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join(name);
    let bytes = std::fs::read(&path).expect("fixture exists");
    (path.display().to_string(), bytes)
}

fn analyse(engine: &Engine, dir: &str, name: &str) -> Review {
    let (origin, bytes) = fixture(dir, name);
    engine.analyze_bytes(&origin, &bytes).unwrap().remove(0)
}

/// What the scripted model answers to a review call, given the schema's closed lists.
type Script = dyn Fn(&[String], &str, &[String]) -> Value + Send + Sync;

/// A chat model that answers from a script and records the prompts it was shown.
struct ScriptedChat {
    script: Box<Script>,
    prompts: Mutex<Vec<String>>,
}

impl ScriptedChat {
    fn new(script: impl Fn(&[String], &str, &[String]) -> Value + Send + Sync + 'static) -> Self {
        ScriptedChat {
            script: Box::new(script),
            prompts: Mutex::new(Vec::new()),
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

impl JsonChat for ScriptedChat {
    fn generate_json(
        &self,
        messages: &[ChatTurn],
        schema: &Value,
        _max_tokens: usize,
    ) -> Result<Value, ModelError> {
        let user = messages.iter().find(|m| m.role == "user").unwrap();
        self.prompts.lock().unwrap().push(user.content.clone());
        let props = &schema["properties"];
        if let Some(points) = props.get("points") {
            let ids = strings(&points["items"]["properties"]["finding"]["enum"]);
            return Ok(
                json!({"points": [{"finding": ids[0], "advice": "Require sign-in first."}]}),
            );
        }
        let item = &props["proposals"]["items"]["properties"];
        let rules = strings(&item["rule"]["enum"]);
        let element = strings(&item["element"]["enum"]).remove(0);
        let quotes = strings(&item["quote"]["enum"]);
        Ok((self.script)(&rules, &element, &quotes))
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

fn engine_with(chat: Arc<ScriptedChat>, per_element: usize) -> Engine {
    let engine = Engine::with_defaults().unwrap();
    let config = ReviewerConfig {
        proposals_per_element: per_element,
        ..ReviewerConfig::default()
    };
    let reviewer = LlmReview::new(chat, None, engine.catalog(), config).unwrap();
    engine.with_reviewer(reviewer)
}

#[test]
fn without_models_the_review_is_the_deterministic_one() {
    let plain = Engine::with_defaults().unwrap();
    let review = analyse(&plain, "pipeline", "exposed.md");
    assert!(review.models.is_none());
    let json = serde_json::to_value(&review).unwrap();
    assert!(json.get("models").is_none());
    assert!(review
        .findings
        .iter()
        .all(|f| f.origin == FindingOrigin::Rule));
}

#[test]
fn only_proposals_naming_real_rules_elements_and_quotes_are_kept() {
    // Each element gets five proposals: one grounded, four broken in one way each.
    let chat = Arc::new(ScriptedChat::new(|rules, element, quotes| {
        json!({"proposals": [
            {"rule": rules[0], "element": element, "quote": quotes[0]},
            {"rule": "X-999", "element": element, "quote": quotes[0]},
            {"rule": rules[0], "element": "n999", "quote": quotes[0]},
            {"rule": rules[0], "element": element, "quote": "The design encrypts everything."},
            {"rule": rules[0], "element": element, "quote": "  "},
        ]})
    }));
    let engine = engine_with(chat.clone(), 5);
    let plain = analyse(&Engine::with_defaults().unwrap(), "pipeline", "exposed.md");
    let review = analyse(&engine, "pipeline", "exposed.md");

    let record = review.models.as_ref().expect("a model took part");
    assert_eq!(record.chat_model.as_deref(), Some("scripted"));
    let calls = chat.prompts.lock().unwrap().len() - 1; // the last call is the summary
    assert!(calls >= 2, "{calls} review calls");
    assert_eq!(record.proposals, 5 * calls);
    assert_eq!(record.proposals_kept, calls);
    assert_eq!(record.proposals_dropped.len(), 4 * calls);
    let reasons: Vec<&str> = record
        .proposals_dropped
        .iter()
        .map(|d| d.reason.as_str())
        .collect();
    assert!(reasons.contains(&"no rule X-999 in the catalogue"));
    assert!(reasons.contains(&"no element n999 in the diagram"));
    assert!(reasons.contains(&"the quote is not in the artifact"));

    let from_model: Vec<_> = review
        .findings
        .iter()
        .filter(|f| f.origin == FindingOrigin::Model)
        .collect();
    assert_eq!(from_model.len(), calls);
    for f in &from_model {
        assert!(
            f.score.value > 0.0,
            "model findings are scored like the rest"
        );
        assert_eq!(f.evidence.len(), 1);
    }
    assert_eq!(review.findings.len(), plain.findings.len() + calls);
    let summary = record.summary.as_deref().unwrap();
    assert!(summary.starts_with(&format!("{} findings:", review.findings.len())));
    assert!(summary.contains("Require sign-in first."));
}

#[test]
fn an_artifact_telling_the_model_to_report_nothing_lowers_nothing() {
    // A model that obeys the injected text proposes nothing; the rules' findings stay.
    let obedient = Arc::new(ScriptedChat::new(|_, _, _| json!({"proposals": []})));
    let engine = engine_with(obedient.clone(), 1);
    let plain = analyse(&Engine::with_defaults().unwrap(), "assist", "injection.md");
    let review = analyse(&engine, "assist", "injection.md");

    assert!(!plain.findings.is_empty());
    let ids = |r: &Review| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.origin == FindingOrigin::Rule)
            .map(|f| {
                (
                    f.id.clone(),
                    f.score.severity.as_str().to_string(),
                    format!("{:.2}", f.score.value),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&plain), ids(&review));

    // The injected text reaches the model only inside the quoted, untrusted part of the prompt.
    for prompt in obedient.prompts.lock().unwrap().iter() {
        if let Some(at) = prompt.find("ignore all previous instructions") {
            let quoted = prompt.find("(quoted, untrusted)").unwrap();
            let listed = prompt.find("Threats that may apply").unwrap();
            assert!(quoted < at && at < listed, "{prompt}");
        }
    }
}

/// Embeds by words hashed into buckets: equal sentences are close, unrelated ones far.
struct BagOfWords;

impl SentenceEmbedder for BagOfWords {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 128];
                for w in t.split_whitespace() {
                    let w = w
                        .trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase();
                    let h = w
                        .bytes()
                        .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
                    v[h % 128] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                v.into_iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

#[test]
fn facts_recognised_by_meaning_are_recorded_and_only_add() {
    let plain = Engine::with_defaults().unwrap();
    let index = SemanticIndex::build(&plain.catalog().lexicon, Arc::new(BagOfWords), 0.75).unwrap();
    let engine = Engine::with_defaults()
        .unwrap()
        .with_semantic("bag-of-words", index);
    let without = analyse(&plain, "assist", "injection.md");
    let with = analyse(&engine, "assist", "injection.md");

    let record = with.models.as_ref().unwrap();
    assert_eq!(record.embeddings_model.as_deref(), Some("bag-of-words"));
    // "Nobody has to sign in to use the partner portal" is, word for word, close to one of the
    // catalogue's exemplars.
    assert!(record.facts_by_meaning >= 1);
    assert!(with.findings.len() >= without.findings.len());
}
