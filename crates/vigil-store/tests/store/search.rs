//! Hybrid search: the right chunk among distractors, and filters.

use vigil_store::{ArtifactRecord, DataDir, Memory, OpsOptions, OpsStore, SearchFilter};

use crate::{embedder, stores};

fn record(id: &str, team: &str, text: &str) -> ArtifactRecord {
    ArtifactRecord {
        artifact_id: id.to_owned(),
        tool: "jira".to_owned(),
        external_key: Some(id.to_owned()),
        title: id.to_owned(),
        team: Some(team.to_owned()),
        project: Some("shop".to_owned()),
        sections: vec![("Design".to_owned(), text.to_owned())],
        created_at_ms: 1_700_000_000_000,
        ..ArtifactRecord::default()
    }
}

#[tokio::test]
async fn hybrid_search_finds_the_precedent_among_distractors() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let corpus = [
        ("PAY-412", "payments", "Card numbers are tokenized by the vault before they reach the ledger database, so the ledger never holds a primary account number."),
        ("PAY-300", "payments", "The refund worker reads refund requests from the queue and calls the bank."),
        ("HR-12", "people", "Employees request leave in the HR portal; managers approve it by email."),
        ("WEB-9", "web", "The marketing site serves static images from the CDN."),
        ("OPS-77", "platform", "Nightly database backups are copied to a second region."),
        ("SEC-5", "platform", "Service-to-service calls use mutual TLS through the mesh."),
    ];
    for (id, team, text) in corpus {
        s.memory
            .put_artifact(&record(id, team, text), &embedder)
            .await
            .unwrap();
    }

    // Nothing in memory is about this: nothing is found, however near the nearest rows are.
    let nonsense = "qwertyuiop zzzz";
    let v = embedder.embed(&[nonsense]).unwrap();
    let hits = s
        .memory
        .search_chunks(nonsense, &v[0], &SearchFilter::default(), 3)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:#?}");

    let q = "How did we keep card numbers (PAN) out of the ledger?";
    let v = embedder.embed(&[q]).unwrap();
    let hits = s
        .memory
        .search_chunks(q, &v[0], &SearchFilter::default(), 3)
        .await
        .unwrap();
    assert_eq!(hits[0].artifact_id, "PAY-412", "{hits:#?}");
    assert!(
        hits[0].vector_rank.is_some() && hits[0].text_rank.is_some(),
        "{hits:#?}"
    );

    let only_platform = SearchFilter {
        team: Some("platform".to_owned()),
        ..SearchFilter::default()
    };
    // Nothing of the platform team's is about card numbers: nothing is found there.
    let hits = s
        .memory
        .search_chunks(q, &v[0], &only_platform, 3)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:#?}");
    // A question about what it does find its documents only.
    let backups = "Where are database backups copied to?";
    let bv = embedder.embed(&[backups]).unwrap();
    let hits = s
        .memory
        .search_chunks(backups, &bv[0], &only_platform, 3)
        .await
        .unwrap();
    assert_eq!(hits[0].artifact_id, "OPS-77", "{hits:#?}");
    assert!(hits
        .iter()
        .all(|h| h.artifact_id.starts_with("OPS") || h.artifact_id.starts_with("SEC")));

    let later = SearchFilter {
        since_ms: Some(1_800_000_000_000),
        ..SearchFilter::default()
    };
    assert!(s
        .memory
        .search_chunks(q, &v[0], &later, 3)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn search_sees_only_latest_versions_and_writes_from_another_connection() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let q = "Which service encrypts backups with a customer managed key?";
    let v = embedder.embed(&[q]).unwrap();
    let search = |memory: Memory| {
        let (q, v) = (q.to_owned(), v[0].clone());
        async move {
            memory
                .search_chunks(&q, &v, &SearchFilter::default(), 5)
                .await
                .unwrap()
        }
    };
    s.memory
        .put_artifact(
            &record(
                "OPS-1",
                "platform",
                "Backups are encrypted with a customer managed key.",
            ),
            &embedder,
        )
        .await
        .unwrap();
    let hits = search(s.memory.clone()).await;
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].version, 1);

    // A second connection to the same file (another process, such as `vigil ingest` while the
    // service runs) writes a new version and a new artifact: the first one's index sees both,
    // and the superseded version is gone from the results.
    let other = OpsStore::open(&DataDir::new(s.dir.path()), &OpsOptions::default(), &[])
        .await
        .unwrap();
    let other = Memory::new(other, 384);
    for version in 2..=7 {
        let text = format!(
            "Backups are encrypted with a customer managed key, rotated every {version} months."
        );
        other
            .put_artifact(&record("OPS-1", "platform", &text), &embedder)
            .await
            .unwrap();
        // Superseded rows pile up and are compacted away along the way.
        let hits = search(s.memory.clone()).await;
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(hits[0].version, version, "{hits:#?}");
        assert!(hits[0].text.contains(&format!("every {version} months")));
    }
    other
        .put_artifact(
            &record(
                "WEB-2",
                "web",
                "The marketing site's nightly backups are encrypted as well.",
            ),
            &embedder,
        )
        .await
        .unwrap();
    let hits = search(s.memory.clone()).await;
    assert_eq!(hits.len(), 2, "{hits:#?}");
    assert_eq!(hits[0].artifact_id, "OPS-1");

    // A filter on a value never stored matches nothing instead of everything.
    let nobody = SearchFilter {
        team: Some("nobody".to_owned()),
        ..SearchFilter::default()
    };
    assert!(s
        .memory
        .search_chunks(q, &v[0], &nobody, 5)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn finding_search_sees_the_latest_version_and_its_filters() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let (r1, rec1) = crate::analyze("checkout-v1.md", "docs/checkout.md").unwrap();
    let (r2, rec2) = crate::analyze("checkout-v2.md", "docs/checkout.md").unwrap();
    s.memory.put_artifact(&rec1, &embedder).await.unwrap();
    s.memory
        .add_findings(&rec1, 1, &r1.findings, &embedder)
        .await
        .unwrap();
    let latest: Vec<&str> = r2.findings.iter().map(|f| f.id.as_str()).collect();
    let gone: Vec<&vigil_core::Finding> = r1
        .findings
        .iter()
        .filter(|f| !latest.contains(&f.id.as_str()))
        .collect();
    let new: Vec<&vigil_core::Finding> = r2
        .findings
        .iter()
        .filter(|f| !r1.findings.iter().any(|g| g.id == f.id))
        .collect();
    assert!(
        !gone.is_empty() && !new.is_empty(),
        "the fixtures' designs differ"
    );

    // Before the second version: a gone finding is found by its own words.
    let search = |q: String, filter: SearchFilter| {
        let memory = s.memory.clone();
        let v = embedder.embed(&[q.as_str()]).unwrap().remove(0);
        async move { memory.search_findings(&q, &v, &filter, 5).await.unwrap() }
    };
    let gone_text = vigil_store::decisions::finding_text(gone[0]);
    let hits = search(gone_text.clone(), SearchFilter::default()).await;
    assert_eq!(hits[0].fingerprint, gone[0].id, "{hits:#?}");
    assert!(hits[0].vector_rank.is_some() && hits[0].text_rank.is_some());

    s.memory.put_artifact(&rec2, &embedder).await.unwrap();
    s.memory
        .add_findings(&rec2, 2, &r2.findings, &embedder)
        .await
        .unwrap();
    // After it: only the second version's findings, the new one first for its own words.
    let hits = search(gone_text, SearchFilter::default()).await;
    assert!(
        hits.iter()
            .all(|h| latest.contains(&h.fingerprint.as_str())),
        "{hits:#?}"
    );
    let new_text = vigil_store::decisions::finding_text(new[0]);
    let hits = search(new_text.clone(), SearchFilter::default()).await;
    assert_eq!(hits[0].fingerprint, new[0].id, "{hits:#?}");
    assert_eq!(hits[0].artifact_id, rec2.artifact_id);

    // Filters narrow before ranking.
    let other_team = SearchFilter {
        team: Some("payments".to_owned()),
        ..SearchFilter::default()
    };
    assert!(search(new_text.clone(), other_team).await.is_empty());
    let its_tool = SearchFilter {
        tool: Some(rec2.tool.clone()),
        ..SearchFilter::default()
    };
    assert_eq!(search(new_text, its_tool).await[0].fingerprint, new[0].id);
}
