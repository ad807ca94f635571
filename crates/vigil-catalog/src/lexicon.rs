//! The lexicons the extractor matches against artifact text: component types (with the head
//! nouns that take the artifact's own names and the technology names that stand alone), data
//! classes, controls, risk signals and interaction verbs. All ids are snake_case and unique.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use vigil_core::{ElementKind, TrustZone};

use crate::error::{Error, Result};
use crate::rules::Rule;

const COMPONENTS: &str = include_str!("../data/lexicon/components.toml");
const DATA: &str = include_str!("../data/lexicon/data.toml");
const CONTROLS: &str = include_str!("../data/lexicon/controls.toml");
const SIGNALS: &str = include_str!("../data/lexicon/signals.toml");
const INTERACTIONS: &str = include_str!("../data/lexicon/interactions.toml");
const LANGUAGE: &str = include_str!("../data/lexicon/language.toml");

/// Word lists the extractor uses to read component names out of sentences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// Words that never belong to a name.
    pub stopwords: Vec<String>,
    /// Heads too vague to name a component without a qualifier.
    pub weak_heads: Vec<String>,
    /// Qualifiers that do not make a name on their own.
    pub weak_modifiers: Vec<String>,
    /// Words that refer back to the component named last.
    pub pronouns: Vec<String>,
    /// Nouns that turn a preceding head into a qualifier ("queue key").
    pub attribute_nouns: Vec<String>,
    /// Verb stems whose inflected forms never qualify a name.
    pub verbs: Vec<String>,
    /// -ing forms that never qualify a name.
    pub ing_verbs: Vec<String>,
}

impl Language {
    /// Every inflected form of the verb stems, plus the listed -ing forms.
    pub fn verb_forms(&self) -> Vec<String> {
        let mut forms = self.ing_verbs.clone();
        for stem in &self.verbs {
            forms.push(stem.clone());
            forms.push(format!("{stem}s"));
            forms.push(format!("{stem}es"));
            forms.push(if stem.ends_with('e') {
                format!("{stem}d")
            } else {
                format!("{stem}ed")
            });
            if let Some(base) = stem.strip_suffix('y') {
                forms.push(format!("{base}ies"));
                forms.push(format!("{base}ied"));
            }
        }
        forms
    }
}

/// A component type: what a reviewer would draw as one box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentType {
    /// Id (`database`, `queue`, `idp`, `customer`, ...).
    pub id: String,
    /// Human label.
    pub label: String,
    /// Diagram element kind.
    pub kind: ElementKind,
    /// Default trust zone.
    pub zone: TrustZone,
    /// Head nouns that the artifact qualifies with its own words ("expenses database").
    #[serde(default)]
    pub heads: Vec<String>,
    /// Names that identify the component on their own ("postgresql", "okta").
    #[serde(default)]
    pub names: Vec<String>,
    /// Whether such a component is an entry point for untrusted callers.
    #[serde(default)]
    pub entry_point: bool,
    /// How much the business depends on it, 0..=1 (feeds blast radius).
    #[serde(default = "half")]
    pub criticality: f64,
}

fn half() -> f64 {
    0.5
}

/// A class of data, with how sensitive it is and which compliance regimes it brings in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataClass {
    /// Id (`personal`, `cardholder`, `credentials`, ...).
    pub id: String,
    /// Human label.
    pub label: String,
    /// Sensitivity from 1 (telemetry) to 4 (cardholder, health, credentials).
    pub sensitivity: u8,
    /// Regimes it brings into scope (`pci_dss`, `hipaa`, `gdpr`, `soc2`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Whether it is personal data (LINDDUN applies).
    #[serde(default)]
    pub personal: bool,
    /// Phrases that name it.
    pub terms: Vec<String>,
    /// Example sentences that mean it without using its terms: the embeddings step recognises
    /// sentences close to them.
    #[serde(default)]
    pub exemplars: Vec<String>,
}

/// A security control an artifact can state or rule out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Id (`tls`, `mfa`, `rate_limiting`, ...).
    pub id: String,
    /// Human label.
    pub label: String,
    /// Phrases that state it.
    pub terms: Vec<String>,
}

/// A risk signal: a phrase that tells a reviewer something is weak here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Id (`plaintext_secret`, `open_network`, ...).
    pub id: String,
    /// Human label.
    pub label: String,
    /// Phrases that state it.
    pub terms: Vec<String>,
    /// Example sentences that mean it without using its terms: the embeddings step recognises
    /// sentences close to them.
    #[serde(default)]
    pub exemplars: Vec<String>,
}

/// An interaction between two elements, named by its verbs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interaction {
    /// Id (`calls`, `stores`, `reads`, ...).
    pub id: String,
    /// Whether data moves from the object to the subject ("A reads from B" is B -> A).
    #[serde(default)]
    pub reverse: bool,
    /// Verb forms.
    pub verbs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentsFile {
    component: Vec<ComponentType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    data_class: Vec<DataClass>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsFile {
    /// Words that, just before a control, rule it out ("without", "no", "not").
    negations: Vec<String>,
    control: Vec<Control>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalsFile {
    signal: Vec<Signal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionsFile {
    interaction: Vec<Interaction>,
}

/// All lexicons.
#[derive(Debug, Clone)]
pub struct Lexicon {
    /// Component types.
    pub components: Vec<ComponentType>,
    /// Data classes.
    pub data_classes: Vec<DataClass>,
    /// Controls.
    pub controls: Vec<Control>,
    /// Negation cues for controls.
    pub negations: Vec<String>,
    /// Risk signals.
    pub signals: Vec<Signal>,
    /// Interactions.
    pub interactions: Vec<Interaction>,
    /// Word lists for reading names.
    pub language: Language,
}

impl Lexicon {
    /// The lexicons compiled into the binary.
    pub fn embedded() -> Result<Lexicon> {
        let components: ComponentsFile = parse("lexicon/components.toml", COMPONENTS)?;
        let data: DataFile = parse("lexicon/data.toml", DATA)?;
        let controls: ControlsFile = parse("lexicon/controls.toml", CONTROLS)?;
        let signals: SignalsFile = parse("lexicon/signals.toml", SIGNALS)?;
        let interactions: InteractionsFile = parse("lexicon/interactions.toml", INTERACTIONS)?;
        let language: Language = parse("lexicon/language.toml", LANGUAGE)?;
        let lexicon = Lexicon {
            components: components.component,
            data_classes: data.data_class,
            controls: controls.control,
            negations: controls.negations,
            signals: signals.signal,
            interactions: interactions.interaction,
            language,
        };
        lexicon.check_unique()?;
        Ok(lexicon)
    }

    fn check_unique(&self) -> Result<()> {
        unique(
            "lexicon/components.toml",
            self.components.iter().map(|c| &c.id),
        )?;
        unique("lexicon/data.toml", self.data_classes.iter().map(|c| &c.id))?;
        unique("lexicon/controls.toml", self.controls.iter().map(|c| &c.id))?;
        unique("lexicon/signals.toml", self.signals.iter().map(|c| &c.id))?;
        unique(
            "lexicon/interactions.toml",
            self.interactions.iter().map(|c| &c.id),
        )
    }

    /// The component type with this id.
    pub fn component(&self, id: &str) -> Option<&ComponentType> {
        self.components.iter().find(|c| c.id == id)
    }

    /// The data class with this id.
    pub fn data_class(&self, id: &str) -> Option<&DataClass> {
        self.data_classes.iter().find(|c| c.id == id)
    }

    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The signal with this id.
    pub fn signal(&self, id: &str) -> Option<&Signal> {
        self.signals.iter().find(|c| c.id == id)
    }

    /// Checks that every lexicon id a rule names exists.
    pub fn check_rule(&self, rule: &Rule) -> Result<()> {
        let w = &rule.when;
        let components = w
            .components
            .iter()
            .chain(&w.from_components)
            .chain(&w.to_components);
        check_ids(rule, "component", components, |id| {
            self.component(id).is_some()
        })?;
        check_ids(rule, "technology", w.technologies.iter(), |id| {
            self.components
                .iter()
                .any(|c| c.names.iter().any(|n| n == id))
        })?;
        check_ids(rule, "data class", w.data.iter(), |id| {
            self.data_class(id).is_some()
        })?;
        check_ids(rule, "signal", w.signals.iter(), |id| {
            self.signal(id).is_some()
        })?;
        let controls = w
            .controls_present
            .iter()
            .chain(&w.controls_ruled_out)
            .chain(&rule.mitigated_by);
        check_ids(rule, "control", controls, |id| self.control(id).is_some())?;
        check_ids(rule, "interaction", w.interactions.iter(), |id| {
            self.interactions.iter().any(|i| i.id == id)
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

fn unique<'a>(file: &str, ids: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::Duplicate {
                file: file.to_owned(),
                id: id.clone(),
            });
        }
    }
    Ok(())
}

fn check_ids<'a>(
    rule: &Rule,
    kind: &'static str,
    ids: impl Iterator<Item = &'a String>,
    exists: impl Fn(&str) -> bool,
) -> Result<()> {
    for id in ids {
        if !exists(id) {
            return Err(Error::UnknownId {
                owner: format!("rule {}", rule.id),
                kind,
                id: id.clone(),
                hint: None,
            });
        }
    }
    Ok(())
}
