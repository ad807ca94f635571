//! Extraction: reads an artifact's sentences for what a reviewer looks for. Components and
//! actors named as the artifact names them, the data each handles, the controls stated or ruled
//! out, risk signals, and the interactions between components. Matching runs Aho-Corasick
//! automata built once from the catalogue lexicons.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;

use vigil_catalog::Lexicon;
use vigil_core::{Artifact, Evidence, Section};

use crate::assist::semantic::{FactKind, SemanticHints};
use crate::text::{self, Token};

/// Longest qualifier run kept in front of a head noun.
const MAX_MODIFIERS: usize = 3;
/// Words that open a statement about the whole design rather than one component.
const UNIVERSAL: [&str; 6] = ["all", "every", "each", "everything", "any", "no"];

/// Tokens before a control term searched for a negation cue.
const NEGATION_WINDOW: usize = 4;

/// One family of lexicon terms compiled into an automaton; each pattern maps to an entry id.
#[derive(Debug, Clone)]
struct TermSet {
    automaton: AhoCorasick,
    /// Whether a match must not be part of a hyphenated word ("app" in "in-app").
    whole_tokens: bool,
    /// Per pattern: index of the lexicon entry it belongs to, and whether it is a head noun.
    entries: Vec<(usize, bool)>,
}

impl TermSet {
    fn new(terms: Vec<(String, usize, bool)>) -> TermSet {
        let patterns: Vec<&str> = terms.iter().map(|(t, _, _)| t.as_str()).collect();
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("lexicon terms form a valid automaton");
        let entries = terms.iter().map(|(_, e, h)| (*e, *h)).collect();
        TermSet {
            automaton,
            entries,
            whole_tokens: false,
        }
    }

    /// Matches on word boundaries inside `text[range]`: (byte range, entry, is_head). Every
    /// overlapping match is considered, so a term that fails the boundary check ("in plain" in
    /// "in plaintext") does not hide one that passes ("plaintext"); then the longest matches are
    /// kept, left to right, without overlaps.
    fn find(&self, text: &str, range: Range<usize>) -> Vec<(Range<usize>, usize, bool)> {
        let slice = &text[range.clone()];
        let mut found: Vec<(Range<usize>, usize)> = self
            .automaton
            .find_overlapping_iter(slice)
            .map(|m| {
                (
                    range.start + m.start()..range.start + m.end(),
                    m.pattern().as_usize(),
                )
            })
            .filter(|(r, _)| text::on_word_boundaries(text, r))
            .filter(|(r, _)| !self.whole_tokens || !inside_hyphenated(text, r))
            .collect();
        found.sort_by(|a, b| {
            a.0.start
                .cmp(&b.0.start)
                .then(b.0.end.cmp(&a.0.end))
                .then(a.1.cmp(&b.1))
        });
        let mut out: Vec<(Range<usize>, usize, bool)> = Vec::new();
        for (r, p) in found {
            if out.last().is_some_and(|(last, _, _)| r.start < last.end) {
                continue;
            }
            out.push((r, self.entries[p].0, self.entries[p].1));
        }
        out
    }
}

/// The lexicons compiled for matching; built once per engine.
#[derive(Debug, Clone)]
pub struct Matcher {
    components: TermSet,
    data: TermSet,
    controls: TermSet,
    negations: TermSet,
    signals: TermSet,
    interactions: TermSet,
    stopwords: HashSet<String>,
    weak_heads: HashSet<String>,
    weak_modifiers: HashSet<String>,
    pronouns: HashSet<String>,
    attribute_nouns: HashSet<String>,
    verbs: HashSet<String>,
    /// Base forms of the interaction verbs ("log", "sign", "back").
    base_verbs: HashSet<String>,
}

impl Matcher {
    /// Compiles the lexicons.
    pub fn new(lexicon: &Lexicon) -> Matcher {
        let mut component_terms = Vec::new();
        for (i, c) in lexicon.components.iter().enumerate() {
            for head in &c.heads {
                component_terms.push((head.clone(), i, true));
                component_terms.push((text::plural(head), i, true));
            }
            for name in &c.names {
                component_terms.push((name.clone(), i, false));
            }
        }
        let words = |list: &[String]| {
            list.iter()
                .map(|w| w.to_lowercase())
                .collect::<HashSet<_>>()
        };
        let mut verbs: HashSet<String> = lexicon.language.verb_forms().into_iter().collect();
        // Third-person forms of interaction verbs ("exports", "reads") are verbs; their base
        // forms double as nouns in names ("export worker", "search service").
        for interaction in &lexicon.interactions {
            for verb in &interaction.verbs {
                let first = verb.split_whitespace().next().unwrap_or_default();
                if first.ends_with('s') && !first.ends_with("ss") {
                    verbs.insert(first.to_owned());
                }
            }
        }
        Matcher {
            components: TermSet {
                whole_tokens: true,
                ..TermSet::new(component_terms)
            },
            data: TermSet::new(with_plurals(flatten(
                lexicon.data_classes.iter().map(|d| &d.terms),
            ))),
            controls: TermSet::new(flatten(lexicon.controls.iter().map(|c| &c.terms))),
            negations: TermSet::new(flatten(std::iter::once(&lexicon.negations))),
            signals: TermSet::new(flatten(lexicon.signals.iter().map(|s| &s.terms))),
            interactions: TermSet::new(flatten(lexicon.interactions.iter().map(|i| &i.verbs))),
            stopwords: words(&lexicon.language.stopwords),
            weak_heads: words(&lexicon.language.weak_heads),
            weak_modifiers: words(&lexicon.language.weak_modifiers),
            pronouns: words(&lexicon.language.pronouns),
            attribute_nouns: words(&lexicon.language.attribute_nouns),
            base_verbs: lexicon
                .interactions
                .iter()
                .flat_map(|i| i.verbs.iter())
                .filter_map(|v| v.split_whitespace().next())
                .map(str::to_owned)
                .chain(["sign", "check", "back"].map(str::to_owned))
                .collect(),
            verbs,
        }
    }
}

/// Adds the plural of every term ("social security numbers", "dates of birth").
fn with_plurals(terms: Vec<(String, usize, bool)>) -> Vec<(String, usize, bool)> {
    let mut out = terms.clone();
    for (term, entry, head) in terms {
        let plural = match term.split_once(" of ") {
            Some((noun, rest)) => format!("{} of {rest}", text::plural(noun)),
            None if term.ends_with('s') => continue,
            None => text::plural(&term),
        };
        out.push((plural, entry, head));
    }
    out
}

fn flatten<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<(String, usize, bool)> {
    lists
        .enumerate()
        .flat_map(|(i, terms)| terms.iter().map(move |t| (t.to_lowercase(), i, false)))
        .collect()
}

/// A fact (data class, control, signal) with the sentence that states it.
pub type FactMap = BTreeMap<String, Evidence>;

/// A component or actor the artifact names.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Display name, as the artifact writes it.
    pub name: String,
    /// Normalized name words.
    pub key: Vec<String>,
    /// Index of the component type in the lexicon.
    pub component: usize,
    /// Technologies named with it.
    pub technologies: BTreeSet<String>,
    /// Where it is named.
    pub mentions: Vec<Evidence>,
    /// Whether its name is specific (a qualifier, a technology, or a head that is not vague).
    pub specific: bool,
    /// Whether it is introduced as a topic (a heading, a lead-in, a table's first cell).
    pub defined: bool,
    /// Data classes it holds or handles.
    pub data: FactMap,
    /// Controls stated for it.
    pub controls: FactMap,
    /// Controls ruled out for it.
    pub absent_controls: FactMap,
    /// Risk signals stated for it.
    pub signals: FactMap,
    /// Surface forms and how often each was used.
    forms: BTreeMap<String, usize>,
}

/// An interaction between two entities.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowFact {
    /// Source entity index.
    pub from: usize,
    /// Target entity index.
    pub to: usize,
    /// Interaction id.
    pub interaction: String,
    /// Data carried.
    pub data: FactMap,
    /// Controls stated in the same sentence.
    pub controls: FactMap,
    /// Controls ruled out in the same sentence.
    pub absent_controls: FactMap,
    /// Signals stated in the same sentence.
    pub signals: FactMap,
    /// The sentences that establish the flow.
    pub evidence: Vec<Evidence>,
}

/// Everything extracted from one artifact.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Named components and actors.
    pub entities: Vec<Entity>,
    /// Interactions between them.
    pub flows: Vec<FlowFact>,
    /// Controls stated with no component in reach (apply to the whole design).
    pub global_controls: FactMap,
    /// Controls ruled out with no component in reach.
    pub global_absent_controls: FactMap,
    /// Signals stated with no component in reach.
    pub global_signals: FactMap,
}

/// What one sentence states, as lexicon ids.
#[derive(Debug, Clone, Default)]
struct SentenceFacts {
    data: Vec<String>,
    signals: Vec<String>,
    stated: Vec<String>,
    ruled_out: Vec<String>,
}

impl SentenceFacts {
    /// Adds what was recognised by meaning and not already read from the words.
    fn add_hints(&mut self, hints: &[(FactKind, String)]) {
        for (kind, id) in hints {
            let list = match kind {
                FactKind::Data => &mut self.data,
                FactKind::Signal => &mut self.signals,
            };
            if !list.contains(id) {
                list.push(id.clone());
            }
        }
    }
}

/// A component named in one sentence.
#[derive(Debug, Clone)]
struct Mention {
    range: Range<usize>,
    entity: usize,
    /// Named only by a technology ("PostgreSQL", "Next.js"), with no head noun.
    technology_only: bool,
}

/// Reads one artifact.
pub fn extract(artifact: &Artifact, lexicon: &Lexicon, matcher: &Matcher) -> Facts {
    extract_with(artifact, lexicon, matcher, None)
}

/// Reads one artifact, adding to each sentence the data classes and signals recognised in it by
/// meaning (see [`crate::assist::semantic`]).
pub fn extract_with(
    artifact: &Artifact,
    lexicon: &Lexicon,
    matcher: &Matcher,
    hints: Option<&SemanticHints>,
) -> Facts {
    let mut reader = Reader {
        lexicon,
        m: matcher,
        facts: Facts::default(),
        index: HashMap::new(),
        aliases: Vec::new(),
        hints,
    };
    for (i, section) in artifact.sections.iter().enumerate() {
        reader.section(i, section);
    }
    reader.merge_subsets();
    reader.facts
}

struct Reader<'a> {
    lexicon: &'a Lexicon,
    m: &'a Matcher,
    facts: Facts,
    index: HashMap<Vec<String>, usize>,
    /// Entities found to be other names of an earlier one: (alias, entity).
    aliases: Vec<(usize, usize)>,
    /// Facts recognised by meaning, by sentence.
    hints: Option<&'a SemanticHints>,
}

impl Reader<'_> {
    fn section(&mut self, index: usize, section: &Section) {
        let path = section.heading_path.join(" > ");
        let mut focus: Option<usize> = None;
        let mut line_start = usize::MAX;
        let mut introduced: Option<usize> = None;
        for sentence in text::sentences(&section.text) {
            let evidence = self.evidence(section, &path, sentence.clone());
            let tokens = text::tokens(&section.text, sentence.clone());
            let Some(first) = tokens.first() else {
                continue;
            };
            let starts_line = section.text[..sentence.start].ends_with('\n') || sentence.start == 0;
            if starts_line {
                line_start = sentence.start;
            }
            let mentions = self.mentions(section, &tokens, sentence.clone(), &evidence, focus);
            let mentions = self.fold_technologies(mentions, focus);
            let introduces = mentions.first().filter(|m| {
                // A sentence that is only a name ("Browser.", a table's first cell) introduces it.
                let rest = &section.text[m.range.end..sentence.end];
                starts_line
                    && m.range.start == first.range.start
                    && rest.trim_matches(['.', ':', ' ']).is_empty()
            });
            if let Some(m) = introduces {
                self.facts.entities[m.entity].defined = true;
            }
            if let (Some(d), Some(m)) = (introduced, mentions.first()) {
                // "Loyalty database. A PostgreSQL database holding ...": the sentence after an
                // introduction describes the component it introduced.
                if self.describes(d, m, &tokens) {
                    self.facts.entities[m.entity].forms.clear();
                    self.aliases.push((m.entity, d));
                }
            }
            introduced = introduces.map(|m| m.entity);
            let pronoun_subject = self.m.pronouns.contains(&first.lower);
            // "All traffic uses mTLS", "Every service ...": a statement about the whole design.
            let universal = UNIVERSAL.contains(&first.lower.as_str());
            let mut targets: Vec<usize> = mentions.iter().map(|m| m.entity).collect();
            if pronoun_subject || (targets.is_empty() && !universal) {
                targets.extend(focus);
            }
            targets.sort_unstable();
            targets.dedup();
            let mut stated = self.sentence_facts(&section.text, sentence.clone(), &tokens);
            if let Some(hints) = self.hints {
                stated.add_hints(hints.sentence(index, &sentence));
            }
            self.attach_facts(&stated, &evidence, &targets);
            let subject = pronoun_subject.then_some(focus).flatten();
            self.flows_of_sentence(
                section,
                sentence.clone(),
                &mentions,
                &evidence,
                &stated,
                subject,
            );
            if let Some(m) = mentions.first() {
                // The subject of a sentence stays in focus for the pronouns that follow it.
                if !pronoun_subject || focus.is_none() {
                    focus = Some(m.entity);
                }
            } else if line_start == sentence.start && !pronoun_subject {
                focus = None;
            }
        }
    }

    /// A technology named beside a component of its type is that component's technology, not a
    /// box of its own: "the chat web app (Next.js)", "the player database runs PostgreSQL".
    fn fold_technologies(&mut self, mentions: Vec<Mention>, focus: Option<usize>) -> Vec<Mention> {
        let component = |r: &Self, e: usize| r.facts.entities[e].component;
        let owners: Vec<usize> = mentions
            .iter()
            .filter(|m| !m.technology_only)
            .map(|m| m.entity)
            .collect();
        let mut kept = Vec::with_capacity(mentions.len());
        for m in mentions {
            let owner = if m.technology_only {
                let same =
                    |&e: &usize| component(self, e) == component(self, m.entity) && e != m.entity;
                owners
                    .iter()
                    .copied()
                    .find(same)
                    .or_else(|| focus.filter(same))
            } else {
                None
            };
            match owner {
                Some(owner) => {
                    let technologies =
                        std::mem::take(&mut self.facts.entities[m.entity].technologies);
                    self.facts.entities[owner].technologies.extend(technologies);
                    self.facts.entities[m.entity].forms.clear();
                    self.aliases.push((m.entity, owner));
                }
                None => kept.push(m),
            }
        }
        kept
    }

    /// Whether mention `m`, opening a sentence, names the same component as entity `d` in
    /// other words: same kind of element, within the first few words.
    fn describes(&self, d: usize, m: &Mention, tokens: &[Token]) -> bool {
        let position = tokens
            .iter()
            .position(|t| t.range.start >= m.range.start)
            .unwrap_or(usize::MAX);
        let kind = |e: usize| self.lexicon.components[self.facts.entities[e].component].kind;
        let first_seen = self.facts.entities[m.entity].mentions.len() <= 1;
        m.entity != d && first_seen && position <= 3 && kind(m.entity) == kind(d)
    }

    fn evidence(&self, section: &Section, path: &str, range: Range<usize>) -> Evidence {
        let orig = section.original_range(range.clone());
        Evidence {
            text: section.text[range].to_owned(),
            start: orig.start,
            end: orig.end,
            section: path.to_owned(),
        }
    }

    /// Finds the components named in a sentence and registers them.
    fn mentions(
        &mut self,
        section: &Section,
        tokens: &[Token],
        sentence: Range<usize>,
        evidence: &Evidence,
        focus: Option<usize>,
    ) -> Vec<Mention> {
        let text = &section.text;
        let matches = self.m.components.find(text, sentence);
        let mut out = Vec::new();
        let mut i = 0;
        while i < matches.len() {
            // Adjacent matches form one compound: "web app config", "PostgreSQL instance".
            let mut j = i;
            let mut qualifies_attribute = false;
            while j + 1 < matches.len()
                && only_space(&text[matches[j].0.end..matches[j + 1].0.start])
            {
                j += 1;
                // "database user": a head qualifying an attribute that is itself a head.
                let word = text[matches[j].0.clone()].to_lowercase();
                qualifies_attribute |= self.m.attribute_nouns.contains(&word);
            }
            let compound = &matches[i..=j];
            i = j + 1;
            let range = compound[0].0.start..compound[compound.len() - 1].0.end;
            if qualifies_attribute
                || self.followed_by_attribute(tokens, &range)
                || self.used_as_verb(text, tokens, &range)
            {
                continue;
            }
            let component = self.compound_type(compound);
            let technologies: BTreeSet<String> = compound
                .iter()
                .filter(|(_, _, head)| !head)
                .map(|(r, _, _)| text[r.clone()].to_lowercase())
                .collect();
            let modifiers = self.modifiers(text, tokens, range.start);
            let name_range = modifiers.unwrap_or(range.start)..range.end;
            let head_words: Vec<String> = text[range.clone()]
                .split_whitespace()
                .map(str::to_lowercase)
                .collect();
            let generic = modifiers.is_none() && technologies.is_empty() && compound.len() == 1;
            let vague = generic
                && (self.m.weak_heads.contains(&head_words.join(" "))
                    || head_words
                        .iter()
                        .all(|w| self.m.weak_heads.contains(&text::singular(w))));
            let name = clean_name(&text[name_range.clone()]);
            let key = self.key(&name);
            if key.is_empty() {
                continue;
            }
            let entity = if generic {
                self.resolve(&key, component, focus)
            } else {
                None
            };
            let entity = entity
                .unwrap_or_else(|| self.register(key.clone(), name.clone(), component, !vague));
            let ent = &mut self.facts.entities[entity];
            ent.technologies.extend(technologies);
            if !generic || ent.key == key {
                *ent.forms.entry(name).or_default() += 1;
            }
            if ent.mentions.len() < 12 && ent.mentions.last() != Some(evidence) {
                ent.mentions.push(evidence.clone());
            }
            let technology_only = compound.iter().all(|(_, _, head)| !head);
            // "Partner Export API": a head read earlier as its own mention is a qualifier here.
            out.retain(|m: &Mention| m.range.start < name_range.start);
            out.push(Mention {
                range: name_range,
                entity,
                technology_only,
            });
        }
        out
    }

    /// Whether a head that is also a verb is used as one: "log in", "sign up", "back up".
    fn used_as_verb(&self, text: &str, tokens: &[Token], range: &Range<usize>) -> bool {
        const PARTICLES: [&str; 6] = ["in", "into", "out", "on", "off", "up"];
        let last = text[range.clone()]
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let verb = self.m.verbs.contains(&last) || self.m.base_verbs.contains(&last);
        let next = tokens.iter().find(|t| t.range.start >= range.end);
        verb && next.is_some_and(|t| {
            t.range.start <= range.end + 1 && PARTICLES.contains(&t.lower.as_str())
        })
    }

    /// Whether the head is a qualifier of an attribute right after it: "queue key", "queue
    /// access key", "database password".
    fn followed_by_attribute(&self, tokens: &[Token], range: &Range<usize>) -> bool {
        let Some(pos) = tokens.iter().position(|t| t.range.start >= range.end) else {
            return false;
        };
        let adjacent = |t: &Token, end: usize| t.range.start <= end + 1;
        let first = &tokens[pos];
        if !adjacent(first, range.end) {
            return false;
        }
        if self.m.attribute_nouns.contains(&first.lower) {
            return true;
        }
        let plain =
            !self.m.stopwords.contains(&first.lower) && !self.m.verbs.contains(&first.lower);
        tokens.get(pos + 1).is_some_and(|second| {
            plain
                && adjacent(second, first.range.end)
                && self.m.attribute_nouns.contains(&second.lower)
        })
    }

    /// The component type of a compound: its last head, unless that head is a vague container
    /// ("instance", "server") and a technology earlier in the compound says more.
    fn compound_type(&self, compound: &[(Range<usize>, usize, bool)]) -> usize {
        let last = compound[compound.len() - 1].1;
        let last_is_weak = compound.len() > 1 && {
            let c = &self.lexicon.components[last];
            c.id == "service" || c.id == "container_platform"
        };
        if last_is_weak {
            if let Some((_, tech, _)) = compound.iter().rev().skip(1).find(|(_, _, head)| !head) {
                return *tech;
            }
        }
        last
    }

    /// Start of the qualifier run before a head at `head_start`, if any.
    fn modifiers(&self, text: &str, tokens: &[Token], head_start: usize) -> Option<usize> {
        let pos = tokens.iter().position(|t| t.range.end > head_start)?;
        let mut run: Vec<&Token> = Vec::new();
        let mut next_start = head_start;
        for t in tokens[..pos].iter().rev() {
            if run.len() == MAX_MODIFIERS
                || t.range.end > next_start
                || !only_space(&text[t.range.end..next_start])
            {
                break;
            }
            let w = t.lower.as_str();
            let numeric = w.chars().all(|c| c.is_ascii_digit() || c == '.');
            if self.m.stopwords.contains(w)
                || self.m.verbs.contains(w)
                || numeric
                || w.ends_with("ly")
            {
                break;
            }
            run.push(t);
            next_start = t.range.start;
        }
        run.reverse();
        self.trim_run(text, tokens, &mut run, head_start);
        let meaningful = run
            .iter()
            .any(|t| !self.m.weak_modifiers.contains(&t.lower));
        run.first().filter(|_| meaningful).map(|t| t.range.start)
    }

    /// Drops qualifiers that are not part of the name: a sentence-opening -ing verb before a
    /// lower-case head ("Storing user data"), and lower-case words before a capitalised name
    /// ("design review Owner", "public Coffer API").
    fn trim_run(&self, text: &str, tokens: &[Token], run: &mut Vec<&Token>, head_start: usize) {
        let capital = |t: &Token| titlecase(&text[t.range.clone()]);
        let head_end = text[head_start..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(text.len(), |e| head_start + e);
        let head_capital = titlecase(&text[head_start..head_end]);
        if let (Some(first), Some(opening)) = (run.first(), tokens.first()) {
            if first.range.start == opening.range.start
                && first.lower.ends_with("ing")
                && !head_capital
            {
                run.remove(0);
            }
        }
        let first_capital = run.iter().position(|t| capital(t)).unwrap_or(run.len());
        let sentence_start = |t: &Token| {
            tokens
                .first()
                .is_some_and(|o| o.range.start == t.range.start)
        };
        let lower_prefix = run[..first_capital]
            .iter()
            .all(|t| !capital(t) && !sentence_start(t));
        if lower_prefix && (first_capital < run.len() || head_capital) && first_capital > 0 {
            run.drain(..first_capital);
        }
    }

    fn key(&self, name: &str) -> Vec<String> {
        let mut words: Vec<String> = name
            .split(|c: char| c.is_whitespace() || c == '-' || c == '/')
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty() && !self.m.stopwords.contains(w))
            .collect();
        if let Some(last) = words.last_mut() {
            *last = text::singular(last);
        }
        words
    }

    /// A bare head ("the worker") refers to the component of that type in focus, or to the
    /// one named most recently.
    fn resolve(&self, key: &[String], component: usize, focus: Option<usize>) -> Option<usize> {
        if let Some(&exact) = self.index.get(key) {
            let e = &self.facts.entities[exact];
            if e.specific {
                return Some(exact);
            }
        }
        let same_head = |e: &Entity| e.component == component && e.key.last() == key.last();
        if let Some(f) = focus.filter(|&f| same_head(&self.facts.entities[f])) {
            return Some(f);
        }
        let candidates: Vec<usize> = (0..self.facts.entities.len())
            .filter(|&i| same_head(&self.facts.entities[i]) && self.facts.entities[i].specific)
            .collect();
        match candidates.as_slice() {
            [] => self.index.get(key).copied(),
            [only] => Some(*only),
            many => many.iter().copied().max_by_key(|&i| self.last_mention(i)),
        }
    }

    fn last_mention(&self, entity: usize) -> usize {
        self.facts.entities[entity]
            .mentions
            .last()
            .map_or(0, |m| m.start)
    }

    fn register(
        &mut self,
        key: Vec<String>,
        name: String,
        component: usize,
        specific: bool,
    ) -> usize {
        if let Some(&i) = self.index.get(&key) {
            self.facts.entities[i].specific |= specific;
            return i;
        }
        let i = self.facts.entities.len();
        self.facts.entities.push(Entity {
            name,
            key: key.clone(),
            component,
            technologies: BTreeSet::new(),
            mentions: Vec::new(),
            specific,
            defined: false,
            data: FactMap::new(),
            controls: FactMap::new(),
            absent_controls: FactMap::new(),
            signals: FactMap::new(),
            forms: BTreeMap::new(),
        });
        self.index.insert(key, i);
        i
    }

    /// Data, controls and signals stated in a sentence, attached to its components (or to the
    /// What a sentence states: data classes, risk signals, and the controls it states or rules
    /// out. Read once per sentence, for its components and for the flows it describes.
    fn sentence_facts(
        &self,
        text: &str,
        sentence: Range<usize>,
        tokens: &[Token],
    ) -> SentenceFacts {
        let ids = |set: &TermSet, id: &dyn Fn(usize) -> String| -> Vec<String> {
            set.find(text, sentence.clone())
                .into_iter()
                .map(|(_, e, _)| id(e))
                .collect()
        };
        let data = ids(&self.m.data, &|e| self.lexicon.data_classes[e].id.clone());
        let signals = ids(&self.m.signals, &|e| self.lexicon.signals[e].id.clone());
        let negations = self.m.negations.find(text, sentence.clone());
        let mut facts = SentenceFacts {
            data,
            signals,
            ..SentenceFacts::default()
        };
        for (range, e, _) in self.m.controls.find(text, sentence.clone()) {
            let id = self.lexicon.controls[e].id.clone();
            if negated(text, tokens, &negations, &range) {
                facts.ruled_out.push(id);
            } else {
                facts.stated.push(id);
            }
        }
        // "encrypted with TLS" speaks of transport, not of storage.
        if facts.stated.iter().any(|c| c == "tls" || c == "mtls") {
            facts.stated.retain(|c| c != "encryption_at_rest");
        }
        facts
    }

    /// Attaches what a sentence states to its components, or to the whole design when none is
    /// in reach.
    fn attach_facts(&mut self, facts: &SentenceFacts, evidence: &Evidence, targets: &[usize]) {
        for &t in targets {
            let ent = &mut self.facts.entities[t];
            add_all(&mut ent.data, &facts.data, evidence);
            add_all(&mut ent.signals, &facts.signals, evidence);
            add_all(&mut ent.controls, &facts.stated, evidence);
            add_all(&mut ent.absent_controls, &facts.ruled_out, evidence);
        }
        if targets.is_empty() {
            add_all(&mut self.facts.global_signals, &facts.signals, evidence);
            add_all(&mut self.facts.global_controls, &facts.stated, evidence);
            add_all(
                &mut self.facts.global_absent_controls,
                &facts.ruled_out,
                evidence,
            );
        }
    }

    /// Flows: "A <verb> ... B" is A -> B, or B -> A for reading verbs.
    fn flows_of_sentence(
        &mut self,
        section: &Section,
        sentence: Range<usize>,
        mentions: &[Mention],
        evidence: &Evidence,
        stated: &SentenceFacts,
        pronoun_subject: Option<usize>,
    ) {
        if mentions.is_empty() {
            return;
        }
        let text = &section.text;
        let verbs = self.m.interactions.find(text, sentence.clone());
        if verbs.is_empty() {
            return;
        }
        let mut pairs = Vec::new();
        for (k, (vrange, interaction, _)) in verbs.iter().enumerate() {
            let subject = mentions
                .iter()
                .rev()
                .find(|m| m.range.end <= vrange.start)
                .map(|m| m.entity)
                .or(pronoun_subject);
            let Some(subject) = subject else { continue };
            let next_verb = verbs.get(k + 1).map_or(usize::MAX, |v| v.0.start);
            let objects = mentions
                .iter()
                .filter(|m| m.range.start >= vrange.end && m.range.start < next_verb)
                .map(|m| m.entity);
            let reverse = self.lexicon.interactions[*interaction].reverse;
            let id = self.lexicon.interactions[*interaction].id.clone();
            for object in objects {
                if object == subject {
                    continue;
                }
                let (from, to) = if reverse {
                    (object, subject)
                } else {
                    (subject, object)
                };
                pairs.push((from, to, id.clone()));
            }
        }
        for (from, to, interaction) in pairs {
            self.add_flow(stated, evidence, (from, to), interaction);
        }
    }

    fn add_flow(
        &mut self,
        stated: &SentenceFacts,
        evidence: &Evidence,
        (from, to): (usize, usize),
        interaction: String,
    ) {
        let existing = self
            .facts
            .flows
            .iter()
            .position(|f| f.from == from && f.to == to);
        let flow = match existing {
            Some(i) => &mut self.facts.flows[i],
            None => {
                self.facts.flows.push(FlowFact {
                    from,
                    to,
                    interaction,
                    data: FactMap::new(),
                    controls: FactMap::new(),
                    absent_controls: FactMap::new(),
                    signals: FactMap::new(),
                    evidence: Vec::new(),
                });
                self.facts.flows.last_mut().expect("just pushed")
            }
        };
        add_all(&mut flow.data, &stated.data, evidence);
        add_all(&mut flow.signals, &stated.signals, evidence);
        add_all(&mut flow.controls, &stated.stated, evidence);
        add_all(&mut flow.absent_controls, &stated.ruled_out, evidence);
        if !flow.evidence.contains(evidence) && flow.evidence.len() < 4 {
            flow.evidence.push(evidence.clone());
        }
    }

    /// Folds an entity into the one longer name that contains all its words ("worker config"
    /// into "worker config file"), keeping the most used surface form as the name.
    fn merge_subsets(&mut self) {
        let n = self.facts.entities.len();
        let mut target: Vec<usize> = (0..n).collect();
        for (a, slot) in target.iter_mut().enumerate() {
            let ea = &self.facts.entities[a];
            let supersets: Vec<usize> = (0..n)
                .filter(|&b| {
                    let eb = &self.facts.entities[b];
                    b != a
                        && eb.component == ea.component
                        && eb.key.len() > ea.key.len()
                        && ea.key.iter().all(|w| eb.key.contains(w))
                })
                .collect();
            if let [only] = supersets.as_slice() {
                *slot = *only;
            }
        }
        for &(alias, entity) in &self.aliases {
            if root(&target, entity) != alias && root(&target, alias) != root(&target, entity) {
                let r = root(&target, alias);
                target[r] = root(&target, entity);
            }
        }
        let mut merged: Vec<Option<Entity>> = self.facts.entities.drain(..).map(Some).collect();
        for a in 0..n {
            let b = root(&target, a);
            if b != a {
                let from = merged[a].take().expect("each entity merges once");
                let into = merged[b].as_mut().expect("targets are kept");
                absorb(into, from);
            }
            target[a] = b;
        }
        let mut new_index = vec![usize::MAX; n];
        let mut kept = Vec::new();
        for (i, e) in merged.into_iter().enumerate() {
            if let Some(mut e) = e {
                e.name = e.best_form();
                new_index[i] = kept.len();
                kept.push(e);
            }
        }
        self.facts.entities = kept;
        let remap = |i: usize| new_index[target[i]];
        let mut flows: Vec<FlowFact> = Vec::new();
        for mut f in self.facts.flows.drain(..) {
            f.from = remap(f.from);
            f.to = remap(f.to);
            if f.from == f.to {
                continue;
            }
            match flows.iter_mut().find(|g| g.from == f.from && g.to == f.to) {
                Some(g) => {
                    merge_facts(&mut g.data, f.data);
                    merge_facts(&mut g.signals, f.signals);
                    merge_facts(&mut g.controls, f.controls);
                    merge_facts(&mut g.absent_controls, f.absent_controls);
                    g.evidence.extend(f.evidence);
                }
                None => flows.push(f),
            }
        }
        self.facts.flows = flows;
    }
}

impl Entity {
    /// How many sentences name it.
    pub fn mention_count(&self) -> usize {
        self.forms.values().sum::<usize>().max(self.mentions.len())
    }

    fn best_form(&self) -> String {
        self.forms
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then(a.0.len().cmp(&b.0.len()))
                    .then(b.0.cmp(a.0))
            })
            .map_or_else(
                || self.name.clone(),
                |(form, _)| text::capitalize_first(form),
            )
    }
}

/// The entity that `i` is merged into, following the chain of merges.
fn root(target: &[usize], mut i: usize) -> usize {
    for _ in 0..target.len() {
        if target[i] == i {
            break;
        }
        i = target[i];
    }
    i
}

fn absorb(into: &mut Entity, from: Entity) {
    into.technologies.extend(from.technologies);
    for m in from.mentions {
        if !into.mentions.contains(&m) {
            into.mentions.push(m);
        }
    }
    into.mentions.sort_by_key(|m| m.start);
    into.specific |= from.specific;
    into.defined |= from.defined;
    merge_facts(&mut into.data, from.data);
    merge_facts(&mut into.controls, from.controls);
    merge_facts(&mut into.absent_controls, from.absent_controls);
    merge_facts(&mut into.signals, from.signals);
    for (form, count) in from.forms {
        *into.forms.entry(form).or_default() += count;
    }
}

fn merge_facts(into: &mut FactMap, from: FactMap) {
    for (k, v) in from {
        into.entry(k).or_insert(v);
    }
}

fn add_all(map: &mut FactMap, ids: &[String], evidence: &Evidence) {
    for id in ids {
        map.entry(id.clone()).or_insert_with(|| evidence.clone());
    }
}

/// Whether a negation cue stands within a few words before `range`, in the same clause.
fn negated(
    text: &str,
    tokens: &[Token],
    negations: &[(Range<usize>, usize, bool)],
    range: &Range<usize>,
) -> bool {
    let pos = tokens
        .iter()
        .position(|t| t.range.start >= range.start)
        .unwrap_or(tokens.len());
    let window_start = tokens[..pos]
        .iter()
        .rev()
        .nth(NEGATION_WINDOW - 1)
        .map_or(0, |t| t.range.start);
    let window_start = window_start.max(tokens.first().map_or(0, |t| t.range.start));
    let before = negations.iter().any(|(r, _, _)| {
        (r.start >= window_start
            && r.end <= range.start
            && !text[r.end..range.start].contains([',', ';', '(']))
            || (r.start <= range.start && r.end >= range.end)
    });
    before || negated_after(text, tokens, pos, range)
}

/// Words that, a few words after a control, rule it out: "the signature is not verified",
/// "MFA is optional", "encryption is disabled".
const AFTER_NEGATIONS: [&str; 12] = [
    "not", "never", "isn't", "aren't", "wasn't", "weren't", "disabled", "skipped", "optional",
    "missing", "absent", "off",
];

fn negated_after(text: &str, tokens: &[Token], pos: usize, range: &Range<usize>) -> bool {
    let after = tokens
        .iter()
        .skip(pos)
        .skip_while(|t| t.range.start < range.end)
        .take(NEGATION_WINDOW);
    for t in after {
        if text[range.end..t.range.start].contains([',', ';', '(', ':']) {
            return false;
        }
        if AFTER_NEGATIONS.contains(&t.lower.as_str()) {
            return true;
        }
    }
    false
}

/// Whether a word is written like a name ("Owner", "Coffer"), not like an acronym ("API").
fn titlecase(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
}

/// Whether `range` touches a hyphen on either side, as "app" in "in-app".
fn inside_hyphenated(text: &str, range: &Range<usize>) -> bool {
    text[..range.start].ends_with('-') || text[range.end..].starts_with('-')
}

fn only_space(s: &str) -> bool {
    s.chars().all(char::is_whitespace) && !s.contains('\n')
}

fn clean_name(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{normalize, Limits};

    fn facts(markdown: &str) -> Facts {
        let lexicon = Lexicon::embedded().unwrap();
        let matcher = Matcher::new(&lexicon);
        let artifact = normalize("t.md", markdown.as_bytes(), &Limits::default())
            .unwrap()
            .remove(0);
        extract(&artifact, &lexicon, &matcher)
    }

    fn entity<'a>(f: &'a Facts, name: &str) -> &'a Entity {
        f.entities
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| {
                panic!(
                    "no {name:?} in {:?}",
                    f.entities.iter().map(|e| &e.name).collect::<Vec<_>>()
                )
            })
    }

    fn flow(f: &Facts, from: &str, to: &str) -> bool {
        let name = |i: usize| f.entities[i].name.to_lowercase();
        f.flows
            .iter()
            .any(|x| name(x.from) == from && name(x.to) == to)
    }

    #[test]
    fn names_keep_the_artifacts_own_qualifiers() {
        let f = facts(
            "# D\n\nThe existing Tallyfold web application puts jobs on the receipt queue.\n",
        );
        assert!(entity(&f, "Tallyfold web application").specific);
        assert_eq!(entity(&f, "receipt queue").key, ["receipt", "queue"]);
        assert!(flow(&f, "tallyfold web application", "receipt queue"));
    }

    #[test]
    fn reading_verbs_reverse_the_flow_and_pronouns_keep_the_subject() {
        let f = facts("# D\n\nThe billing worker starts at night. It reads invoices from the ledger database.\n");
        assert!(
            flow(&f, "ledger database", "billing worker"),
            "{:?}",
            f.flows
        );
        assert!(entity(&f, "billing worker").data.contains_key("financial"));
    }

    #[test]
    fn a_bare_head_refers_back_to_the_component_named_before() {
        let f = facts("# D\n\nThe export worker copies files. Later the worker deletes them.\n");
        assert_eq!(
            f.entities
                .iter()
                .filter(|e| e.key.last().is_some_and(|k| k == "worker"))
                .count(),
            1
        );
        assert!(entity(&f, "export worker").mention_count() >= 2);
    }

    #[test]
    fn heads_used_as_qualifiers_are_not_components() {
        let f = facts(
            "# D\n\nThe payments service keeps the database password and the queue access key.\n",
        );
        assert!(
            f.entities
                .iter()
                .all(|e| e.key != ["database"] && e.key != ["queue"]),
            "{:?}",
            f.entities
        );
        assert!(entity(&f, "payments service")
            .data
            .contains_key("credentials"));
    }

    #[test]
    fn negated_controls_are_ruled_out_and_broad_reach_is_not_isolation() {
        let f = facts(
            "# D\n\nThe report API is called without TLS.\n\nThe audit database accepts connections from any host in the private network.\n",
        );
        assert!(entity(&f, "report API").absent_controls.contains_key("tls"));
        let db = entity(&f, "audit database");
        assert!(
            !db.controls.contains_key("network_isolation"),
            "{:?}",
            db.controls
        );
        assert!(db.signals.contains_key("open_network"));
    }

    #[test]
    fn an_introduced_component_absorbs_its_description() {
        let f =
            facts("# D\n\n**Orders database.** A PostgreSQL database holding customer names.\n");
        let db = entity(&f, "Orders database");
        assert!(
            db.technologies.contains("postgresql"),
            "{:?}",
            db.technologies
        );
        assert!(db.data.contains_key("personal"));
        assert_eq!(
            f.entities
                .iter()
                .filter(|e| e.component == db.component)
                .count(),
            1
        );
    }

    #[test]
    fn technologies_fold_into_the_component_they_describe() {
        let f = facts("# D\n\nThe chat web app is written with Next.js and served by nginx.\n");
        assert!(entity(&f, "chat web app").technologies.contains("next.js"));
        assert!(f.entities.iter().all(|e| e.name != "Next.js"));
    }

    #[test]
    fn a_head_qualifying_another_is_an_attribute() {
        let f = facts("# D\n\nThe booking API connects with its own database user.\n");
        assert!(
            f.entities.iter().all(|e| e.key != ["database", "user"]),
            "{:?}",
            f.entities
        );
    }

    #[test]
    fn hyphenated_words_do_not_hide_components() {
        let f = facts("# D\n\nThe help desk offers in-app chat.\n");
        assert!(
            f.entities.iter().all(|e| e.key != ["app"]),
            "{:?}",
            f.entities
        );
    }
}
