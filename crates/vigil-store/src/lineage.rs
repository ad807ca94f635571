//! Finding lineage between two review versions: which findings are new, unchanged, changed or
//! gone, matched by their stable fingerprints.
//!
//! A fingerprint covers rule, element identity and normalized evidence, so:
//! - same fingerprint, same score and title: **unchanged**;
//! - same fingerprint with a different score or severity (e.g. a due date moved), or a different
//!   fingerprint for the same rule on the same element (the quoted design text was reworded):
//!   **changed**, linked to the fingerprint it replaces so its workflow state carries over;
//! - otherwise **new** (only after) or **gone** (only before: the design no longer has it).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

use vigil_core::Finding;

/// How a finding moved between two review versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingChange {
    /// Not in the previous version.
    New,
    /// The same finding, scored the same.
    Unchanged,
    /// The same rule on the same element, with new evidence or a new score.
    Changed,
    /// In the previous version only.
    Gone,
}

impl FindingChange {
    /// The name used in history and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingChange::New => "new",
            FindingChange::Unchanged => "unchanged",
            FindingChange::Changed => "changed",
            FindingChange::Gone => "gone",
        }
    }
}

/// One finding's entry in a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffEntry {
    /// The finding's fingerprint (the previous one for a gone finding).
    pub fingerprint: String,
    /// The fingerprint it replaces, for a changed finding whose evidence changed.
    pub previous: Option<String>,
    /// Its rule.
    pub rule: String,
    /// What happened.
    pub change: FindingChange,
    /// Why, for people.
    pub detail: String,
}

/// The findings of a review version compared with the version before it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingDiff {
    /// One entry per finding of either version.
    pub entries: Vec<DiffEntry>,
}

impl FindingDiff {
    /// How many entries have this change.
    pub fn count(&self, change: FindingChange) -> usize {
        self.entries.iter().filter(|e| e.change == change).count()
    }

    /// The fingerprints with this change.
    pub fn fingerprints(&self, change: FindingChange) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.change == change)
            .map(|e| e.fingerprint.as_str())
            .collect()
    }
}

/// Compares the findings of two review versions.
pub fn diff(before: &[Finding], after: &[Finding]) -> FindingDiff {
    let old: HashMap<&str, &Finding> = before.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut matched: HashSet<&str> = HashSet::new();
    let mut entries = Vec::new();
    let mut unmatched_after = Vec::new();

    for f in after {
        match old.get(f.id.as_str()) {
            Some(prev) => {
                matched.insert(prev.id.as_str());
                entries.push(same_fingerprint(prev, f));
            }
            None => unmatched_after.push(f),
        }
    }

    for f in unmatched_after {
        let replaced = before.iter().find(|p| {
            !matched.contains(p.id.as_str())
                && !after.iter().any(|a| a.id == p.id)
                && p.rule == f.rule
                && p.element_name == f.element_name
        });
        entries.push(match replaced {
            Some(prev) => {
                matched.insert(prev.id.as_str());
                entry(
                    f,
                    Some(&prev.id),
                    FindingChange::Changed,
                    "evidence changed",
                )
            }
            None => entry(f, None, FindingChange::New, "first raised in this version"),
        });
    }

    for p in before.iter().filter(|p| !matched.contains(p.id.as_str())) {
        entries.push(entry(
            p,
            None,
            FindingChange::Gone,
            "no longer raised: the design changed",
        ));
    }
    FindingDiff { entries }
}

fn same_fingerprint(prev: &Finding, now: &Finding) -> DiffEntry {
    let rescored = (prev.score.value - now.score.value).abs() > 1e-9
        || prev.score.severity != now.score.severity;
    if rescored {
        let detail = format!("score {:.1} -> {:.1}", prev.score.value, now.score.value);
        entry(now, None, FindingChange::Changed, &detail)
    } else {
        entry(now, None, FindingChange::Unchanged, "unchanged")
    }
}

fn entry(f: &Finding, previous: Option<&str>, change: FindingChange, detail: &str) -> DiffEntry {
    DiffEntry {
        fingerprint: f.id.clone(),
        previous: previous.map(str::to_owned),
        rule: f.rule.clone(),
        change,
        detail: detail.to_owned(),
    }
}
