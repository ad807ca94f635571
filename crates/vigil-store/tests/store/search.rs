//! Hybrid search: the right chunk among distractors, and filters.

use vigil_store::{ArtifactRecord, SearchFilter};

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
    let hits = s
        .memory
        .search_chunks(q, &v[0], &only_platform, 3)
        .await
        .unwrap();
    assert!(!hits.is_empty());
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
