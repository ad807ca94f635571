//! Indexing and validation of the framework files: every id unique (CWE ids across weaknesses,
//! categories and views; current and retired ids apart), every reference resolved. References
//! to retired ids that the upstream data still carries are known and tolerated; anything else
//! that dangles is an error naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use super::records::{
    AttackFile, CapecFile, CsfFile, CweFile, HipaaFile, MethodFile, OwaspFile, PciFile, Soc2File,
};
use super::{Frameworks, MethodTable, RetiredReference};
use crate::error::{Error, Result};

/// ATT&CK ids that CAPEC cites from a matrix other than Enterprise (T1513 is Mobile's
/// "Screen Capture"). Known, not an error.
const OUTSIDE_ENTERPRISE: &[&str] = &["T1513"];

/// The parsed files.
pub(super) struct Files {
    pub cwe: CweFile,
    pub capec: CapecFile,
    pub attack: AttackFile,
    pub owasp: OwaspFile,
    pub csf: CsfFile,
    pub pci: PciFile,
    pub hipaa: HipaaFile,
    pub soc2: Soc2File,
    pub stride: MethodFile,
    pub linddun: MethodFile,
}

/// Indexes every table by id, failing on a duplicate.
pub(super) fn index(files: Files) -> Result<Frameworks> {
    let Files {
        cwe,
        capec,
        attack,
        owasp,
        csf,
        pci,
        hipaa,
        soc2,
        stride,
        linddun,
    } = files;

    const CWE: &str = "frameworks/cwe.json";
    let groupings = cwe.categories.into_iter().chain(cwe.views);
    let cwe_groupings = by_id(CWE, groupings, |g| g.id)?;
    let cwe_weaknesses = by_id(CWE, cwe.weaknesses, |w| w.id)?;
    disjoint(CWE, cwe_weaknesses.keys(), cwe_groupings.keys())?;

    const CAPEC: &str = "frameworks/capec.json";
    let capec_current = by_id(CAPEC, capec.attack_patterns, |p| p.id)?;
    let capec_retired = by_id(CAPEC, capec.retired, |p| p.id)?;
    disjoint(CAPEC, capec_current.keys(), capec_retired.keys())?;

    const ATTACK: &str = "frameworks/attack.json";
    let techniques = by_id(ATTACK, attack.techniques, |t| t.id.clone())?;
    let techniques_retired = by_id(ATTACK, attack.retired, |t| t.id.clone())?;
    disjoint(ATTACK, techniques.keys(), techniques_retired.keys())?;

    const CSF: &str = "frameworks/nist_csf_2.json";
    let csf_subcategories = by_id(CSF, csf.subcategories, |s| s.id.clone())?;
    let csf_withdrawn = by_id(CSF, csf.withdrawn, |w| w.id.clone())?;
    disjoint(CSF, csf_subcategories.keys(), csf_withdrawn.keys())?;

    const PCI: &str = "frameworks/pci_dss_4.json";
    let pci_all = pci.requirements.into_iter().chain(pci.sub_requirements);

    const OWASP: &str = "frameworks/owasp_top10.json";
    const HIPAA: &str = "frameworks/hipaa_security.json";
    const SOC2: &str = "frameworks/soc2_tsc.json";
    Ok(Frameworks {
        cwe: cwe_weaknesses,
        cwe_groupings,
        capec: capec_current,
        capec_retired,
        tactics: by_id(ATTACK, attack.tactics, |t| t.id.clone())?,
        techniques,
        techniques_retired,
        attack_mitigations: by_id(ATTACK, attack.mitigations, |m| m.id.clone())?,
        owasp_2021: by_id(OWASP, owasp.y2021, |e| e.id.clone())?,
        owasp_2025: by_id(OWASP, owasp.y2025, |e| e.id.clone())?,
        csf_functions: by_id(CSF, csf.functions, |f| f.id.clone())?,
        csf_categories: by_id(CSF, csf.categories, |c| c.id.clone())?,
        csf_subcategories,
        csf_withdrawn: csf_withdrawn.into_keys().collect(),
        pci_goals: by_id(PCI, pci.goals, |g| g.id)?,
        pci: by_id(PCI, pci_all, |r| r.id.clone())?,
        hipaa_sections: by_id(HIPAA, hipaa.sections, |s| s.id.clone())?,
        hipaa: by_id(HIPAA, hipaa.items, |i| i.id.clone())?,
        soc2_groups: by_id(SOC2, soc2.groups, |g| g.id.clone())?,
        soc2: by_id(SOC2, soc2.criteria, |c| c.id.clone())?,
        stride: method("frameworks/stride.json", stride)?,
        linddun: method("frameworks/linddun.json", linddun)?,
        retired_references: Vec::new(),
    })
}

/// Resolves every reference, within and across files. Returns the known references to
/// retired or out-of-matrix ids.
pub(super) fn references(f: &Frameworks) -> Result<Vec<RetiredReference>> {
    let mut retired = Vec::new();
    cwe_references(f, &mut retired)?;
    capec_references(f, &mut retired)?;
    attack_references(f)?;
    owasp_references(f)?;
    csf_references(f)?;
    compliance_references(f)?;
    Ok(retired)
}

fn cwe_references(f: &Frameworks, retired: &mut Vec<RetiredReference>) -> Result<()> {
    const FILE: &str = "frameworks/cwe.json";
    let any_cwe = |id: &u32| f.cwe.contains_key(id) || f.cwe_groupings.contains_key(id);
    for w in f.cwe.values() {
        let owner = format!("CWE-{}", w.id);
        for parent in &w.parents {
            require(FILE, &owner, "cwe", parent, f.cwe.contains_key(parent))?;
        }
        for capec in &w.capec {
            if let Some(old) = f.capec_retired.get(capec) {
                retired.push(RetiredReference {
                    owner: owner.clone(),
                    id: format!("CAPEC-{capec}"),
                    note: format!("retired in CAPEC ({})", old.status),
                });
                continue;
            }
            require(FILE, &owner, "capec", capec, f.capec.contains_key(capec))?;
        }
    }
    for g in f.cwe_groupings.values() {
        for member in &g.members {
            require(
                FILE,
                format!("CWE-{}", g.id),
                "cwe",
                member,
                any_cwe(member),
            )?;
        }
    }
    Ok(())
}

fn capec_references(f: &Frameworks, retired: &mut Vec<RetiredReference>) -> Result<()> {
    const FILE: &str = "frameworks/capec.json";
    for p in f.capec.values() {
        let owner = format!("CAPEC-{}", p.id);
        for parent in &p.parents {
            require(FILE, &owner, "capec", parent, f.capec.contains_key(parent))?;
        }
        for cwe in &p.cwe {
            require(FILE, &owner, "cwe", cwe, f.cwe.contains_key(cwe))?;
        }
        for technique in &p.attack {
            if f.techniques.contains_key(technique) {
                continue;
            }
            let note = match f.techniques_retired.get(technique) {
                Some(old) => match &old.replaced_by {
                    Some(next) => format!("{} in ATT&CK; replaced by {next}", old.status),
                    None => format!("{} in ATT&CK", old.status),
                },
                None if OUTSIDE_ENTERPRISE.contains(&technique.as_str()) => {
                    "not an ATT&CK Enterprise technique".to_owned()
                }
                None => return Err(dangling(FILE, &owner, "attack", technique)),
            };
            retired.push(RetiredReference {
                owner: owner.clone(),
                id: technique.clone(),
                note,
            });
        }
    }
    Ok(())
}

fn attack_references(f: &Frameworks) -> Result<()> {
    const FILE: &str = "frameworks/attack.json";
    for t in f.techniques.values() {
        if let Some(parent) = &t.subtechnique_of {
            require(
                FILE,
                &t.id,
                "attack",
                parent,
                f.techniques.contains_key(parent),
            )?;
        }
        for tactic in &t.tactics {
            require(
                FILE,
                &t.id,
                "tactic",
                tactic,
                f.tactics.contains_key(tactic),
            )?;
        }
    }
    for m in f.attack_mitigations.values() {
        for t in &m.techniques {
            require(FILE, &m.id, "attack", t, f.techniques.contains_key(t))?;
        }
    }
    for r in f.techniques_retired.values() {
        if let Some(next) = &r.replaced_by {
            require(FILE, &r.id, "attack", next, f.techniques.contains_key(next))?;
        }
    }
    Ok(())
}

fn owasp_references(f: &Frameworks) -> Result<()> {
    const FILE: &str = "frameworks/owasp_top10.json";
    for e in f.owasp_2021.values().chain(f.owasp_2025.values()) {
        for cwe in &e.cwe {
            let known = f.cwe.contains_key(cwe) || f.cwe_groupings.contains_key(cwe);
            require(FILE, &e.id, "cwe", cwe, known)?;
        }
        if let Some(category) = &e.cwe_category {
            require(
                FILE,
                &e.id,
                "cwe",
                category,
                f.cwe_groupings.contains_key(category),
            )?;
        }
    }
    Ok(())
}

fn csf_references(f: &Frameworks) -> Result<()> {
    const FILE: &str = "frameworks/nist_csf_2.json";
    for s in f.csf_subcategories.values() {
        require(
            FILE,
            &s.id,
            "nist_csf",
            &s.category,
            f.csf_categories.contains_key(&s.category),
        )?;
        require(
            FILE,
            &s.id,
            "nist_csf",
            &s.function,
            f.csf_functions.contains_key(&s.function),
        )?;
    }
    for c in f.csf_categories.values() {
        require(
            FILE,
            &c.id,
            "nist_csf",
            &c.function,
            f.csf_functions.contains_key(&c.function),
        )?;
    }
    Ok(())
}

fn compliance_references(f: &Frameworks) -> Result<()> {
    const PCI: &str = "frameworks/pci_dss_4.json";
    for r in f.pci.values() {
        if let Some(goal) = r.goal {
            require(
                PCI,
                &r.id,
                "pci goal",
                goal,
                f.pci_goals.contains_key(&goal),
            )?;
        }
        if let Some(parent) = &r.requirement {
            require(PCI, &r.id, "pci_dss", parent, f.pci.contains_key(parent))?;
        }
    }

    const HIPAA: &str = "frameworks/hipaa_security.json";
    for i in f.hipaa.values() {
        let section = f.hipaa_sections.contains_key(&i.section);
        require(HIPAA, &i.id, "hipaa section", &i.section, section)?;
        if let Some(parent) = &i.parent {
            let standard = f.hipaa.get(parent).is_some_and(|p| p.kind == "standard");
            require(HIPAA, &i.id, "hipaa", parent, standard)?;
        }
    }

    const SOC2: &str = "frameworks/soc2_tsc.json";
    for c in f.soc2.values() {
        require(
            SOC2,
            &c.id,
            "soc2 group",
            &c.group,
            f.soc2_groups.contains_key(&c.group),
        )?;
    }
    Ok(())
}

fn method(file: &str, m: MethodFile) -> Result<MethodTable> {
    let ids = by_id(file, m.categories.iter(), |c| c.id.clone())?;
    by_id(file, m.elements.iter(), |e| e.id.clone())?;
    for e in &m.elements {
        for c in e.applies.iter().chain(&e.conditional) {
            require(file, &e.id, "category", c, ids.contains_key(c))?;
        }
    }
    Ok(MethodTable {
        categories: m.categories,
        elements: m.elements,
    })
}

fn by_id<K, V>(
    file: &str,
    items: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> K,
) -> Result<BTreeMap<K, V>>
where
    K: Ord + Display,
{
    let mut map = BTreeMap::new();
    for item in items {
        let id = key(&item);
        if map.contains_key(&id) {
            return Err(Error::Duplicate {
                file: file.to_owned(),
                id: id.to_string(),
            });
        }
        map.insert(id, item);
    }
    Ok(map)
}

fn disjoint<'a, K: Ord + Display + 'a>(
    file: &str,
    a: impl Iterator<Item = &'a K>,
    b: impl Iterator<Item = &'a K>,
) -> Result<()> {
    let a: BTreeSet<_> = a.collect();
    match b.into_iter().find(|id| a.contains(id)) {
        Some(id) => Err(Error::Duplicate {
            file: file.to_owned(),
            id: id.to_string(),
        }),
        None => Ok(()),
    }
}

fn require(
    file: &str,
    owner: impl Display,
    kind: &'static str,
    id: impl Display,
    ok: bool,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(dangling(file, owner, kind, id))
    }
}

fn dangling(file: &str, owner: impl Display, kind: &'static str, id: impl Display) -> Error {
    Error::UnknownId {
        owner: format!("{file}: {owner}"),
        kind,
        id: id.to_string(),
        hint: None,
    }
}
