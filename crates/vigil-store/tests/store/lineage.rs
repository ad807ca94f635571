//! Versions and lineage: a changed artifact is a new version, unchanged chunks are not
//! re-embedded, and review versions say which findings are new, unchanged, changed or gone.

use vigil_store::lineage::FindingChange;
use vigil_store::workflow::FindingStatus;

use crate::{analyze, embedder, stores};

#[tokio::test]
async fn a_changed_artifact_is_a_new_version_and_unchanged_sections_are_not_reembedded() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let (_, v1) = analyze("checkout-v1.md", "docs/checkout.md").unwrap();
    let (_, v2) = analyze("checkout-v2.md", "docs/checkout.md").unwrap();
    assert_eq!(v1.artifact_id, v2.artifact_id);

    let first = s.memory.put_artifact(&v1, &embedder).await.unwrap();
    assert_eq!((first.version, first.created, first.reused), (1, true, 0));
    assert!(first.embedded >= 3, "{first:?}");

    let again = s.memory.put_artifact(&v1, &embedder).await.unwrap();
    assert_eq!(
        (again.version, again.created, again.embedded),
        (1, false, 0)
    );

    let second = s.memory.put_artifact(&v2, &embedder).await.unwrap();
    assert_eq!((second.version, second.created), (2, true));
    // Overview and Storage are unchanged; Admin changed and Reporting is new.
    assert!(second.reused >= 2, "{second:?}");
    assert_eq!(second.embedded, 2, "{second:?}");

    let (versions, _) = s.memory.counts(&v1.artifact_id).await.unwrap();
    assert_eq!(versions, 2);
}

#[tokio::test]
async fn review_versions_say_what_is_new_unchanged_and_gone() {
    let s = stores().await.unwrap();
    let (r1, _) = analyze("checkout-v1.md", "docs/checkout.md").unwrap();
    let (r2, _) = analyze("checkout-v2.md", "docs/checkout.md").unwrap();
    let id = r1.artifact.clone();

    let first = s.ops.record_review(r1.clone(), 1).await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.diff.count(FindingChange::New), r1.findings.len());

    let second = s.ops.record_review(r2.clone(), 2).await.unwrap();
    assert_eq!(second.version, 2);
    let d = &second.diff;
    let kept: Vec<&str> = r1
        .findings
        .iter()
        .filter(|f| r2.findings.iter().any(|g| g.id == f.id))
        .map(|f| f.id.as_str())
        .collect();
    assert!(
        !kept.is_empty(),
        "the unchanged storage section keeps its findings"
    );
    for fp in &kept {
        let e = d.entries.iter().find(|e| e.fingerprint == *fp).unwrap();
        assert!(matches!(
            e.change,
            FindingChange::Unchanged | FindingChange::Changed
        ));
    }
    assert!(
        d.count(FindingChange::Gone) >= 1,
        "plain HTTP admin calls are gone: {d:?}"
    );
    assert!(
        d.count(FindingChange::New) >= 1,
        "the partner export is new: {d:?}"
    );
    assert_eq!(
        d.entries.len(),
        r2.findings.len() + d.count(FindingChange::Gone),
        "one entry per finding of either version"
    );

    let gone = d.fingerprints(FindingChange::Gone)[0].to_owned();
    assert_eq!(
        s.ops.finding_status(&id, &gone).await.unwrap(),
        Some(FindingStatus::Gone)
    );
    let history = s.ops.finding_history(&id, &gone).await.unwrap();
    let events: Vec<&str> = history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(events.first(), Some(&"new"));
    assert_eq!(events.last(), Some(&"gone"));

    let latest = s.ops.latest_review(&id).await.unwrap().unwrap();
    assert_eq!(latest.version, 2);
    assert_eq!(latest.review, r2);
}

#[tokio::test]
async fn workflow_state_follows_the_finding_into_the_next_version() {
    let s = stores().await.unwrap();
    let (r1, _) = analyze("checkout-v1.md", "docs/checkout.md").unwrap();
    let (r2, _) = analyze("checkout-v2.md", "docs/checkout.md").unwrap();
    let id = r1.artifact.clone();
    s.ops.record_review(r1.clone(), 1).await.unwrap();
    let kept = r1
        .findings
        .iter()
        .find(|f| r2.findings.iter().any(|g| g.id == f.id))
        .unwrap();
    s.ops
        .set_finding_status(&id, &kept.id, FindingStatus::Accepted, "RISK-7")
        .await
        .unwrap();
    s.ops.record_review(r2, 2).await.unwrap();
    assert_eq!(
        s.ops.finding_status(&id, &kept.id).await.unwrap(),
        Some(FindingStatus::Accepted)
    );
}

#[tokio::test]
async fn jobs_and_cursors_survive_reopening() {
    let s = stores().await.unwrap();
    let id = s
        .ops
        .enqueue_job("analyze", r#"{"key":"PAY-1"}"#)
        .await
        .unwrap();
    s.ops
        .set_cursor("jira", "2026-12-01T00:00:00Z")
        .await
        .unwrap();
    let data = vigil_store::DataDir::new(s.dir.path());
    drop(s.ops);
    let ops = vigil_store::OpsStore::open(&data, &Default::default(), &[])
        .await
        .unwrap();
    let job = ops.claim_job().await.unwrap().unwrap();
    assert_eq!((job.id, job.attempts), (id, 1));
    assert!(ops.claim_job().await.unwrap().is_none());
    ops.finish_job(id, None).await.unwrap();
    assert_eq!(
        ops.cursor("jira").await.unwrap().as_deref(),
        Some("2026-12-01T00:00:00Z")
    );
}
