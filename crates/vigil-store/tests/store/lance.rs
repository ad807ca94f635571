//! Memory in LanceDB beside the operational store: snapshots of both taken while writes go on,
//! memory kept in SQLite by an older release moved over, and searches once the vector index
//! exists.

use std::collections::HashSet;

use vigil_store::snapshot;
use vigil_store::{
    ArtifactRecord, DataDir, Memory, OpsOptions, OpsStore, SearchFilter, TextEmbedder,
};

/// Embeddings made of the words of a text (each word hashed to a few dimensions), unit length:
/// texts sharing words are close, as with a real model, at no cost.
struct WordEmbedder;

impl TextEmbedder for WordEmbedder {
    fn dimensions(&self) -> usize {
        384
    }

    fn embed(&self, texts: &[&str]) -> vigil_store::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| words_vector(t)).collect())
    }
}

fn words_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 384];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        for k in 0..3 {
            let i = ((h >> (k * 16)) % 384) as usize;
            v[i] += if (h >> (48 + k)) & 1 == 0 { 1.0 } else { -1.0 };
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}

fn record(id: &str, text: &str) -> ArtifactRecord {
    ArtifactRecord {
        artifact_id: id.to_owned(),
        tool: "confluence".to_owned(),
        title: id.to_owned(),
        team: Some("payments".to_owned()),
        sections: vec![("Design".to_owned(), text.to_owned())],
        created_at_ms: 1_700_000_000_000,
        ..ArtifactRecord::default()
    }
}

async fn open(data: &DataDir) -> Memory {
    let ops = OpsStore::open(data, &OpsOptions::default(), &[])
        .await
        .unwrap();
    Memory::new(ops, 384)
}

async fn search(memory: &Memory, q: &str, limit: usize) -> Vec<vigil_store::memory::ChunkHit> {
    memory
        .search_chunks(q, &words_vector(q), &SearchFilter::default(), limit)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_during_writes_restores_both_stores_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let memory = open(&data).await;
    for i in 0..20 {
        let text = format!("Service {i} stores card numbers in ledger {i}.");
        memory
            .put_artifact(&record(&format!("DOC-{i}"), &text), &WordEmbedder)
            .await
            .unwrap();
    }

    // New versions of every document are written while the snapshot is taken.
    let writer = {
        let memory = memory.clone();
        tokio::spawn(async move {
            for round in 2..=4 {
                for i in 0..20 {
                    let text = format!("Service {i} tokenizes card numbers, round {round}.");
                    memory
                        .put_artifact(&record(&format!("DOC-{i}"), &text), &WordEmbedder)
                        .await
                        .unwrap();
                }
            }
        })
    };
    let snap = dir.path().join("snap");
    let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
        .await
        .unwrap();
    let info = snapshot::backup(&ops, &snap).await.unwrap();
    assert_eq!(info.lance_tables.len(), 4, "{info:?}");
    writer.await.unwrap();
    let after: Vec<u32> = {
        let mut v = Vec::new();
        for i in 0..20 {
            v.push(
                memory
                    .latest_version(&format!("DOC-{i}"))
                    .await
                    .unwrap()
                    .unwrap()
                    .0,
            );
        }
        v
    };
    assert!(after.iter().all(|v| *v == 4));
    drop((memory, ops));

    let restored = snapshot::restore(&data, &snap).unwrap();
    assert!(restored.kept_db.is_some() && restored.kept_lance.is_some());
    let memory = open(&data).await;
    let report = memory.check().await.unwrap();
    assert!(report.incomplete.is_empty(), "{report:?}");
    assert_eq!(report.complete, report.versions);
    // Each document is back at the version the snapshot's database committed, and a search
    // returns that version's text.
    for i in 0..20 {
        let id = format!("DOC-{i}");
        let (version, _) = memory.latest_version(&id).await.unwrap().unwrap();
        assert!((1..=4).contains(&version));
        let text = memory.latest_text(&id).await.unwrap().unwrap();
        if version == 1 {
            assert!(text.contains("stores card numbers"), "{text}");
        } else {
            assert!(text.contains(&format!("round {version}")), "{text}");
        }
    }
    let hits = search(&memory, "card numbers", 100).await;
    let ids: HashSet<&str> = hits.iter().map(|h| h.artifact_id.as_str()).collect();
    assert_eq!(ids.len(), 20, "{hits:#?}");
    assert_eq!(hits.len(), 20, "one chunk per document: {hits:#?}");
    // Rows of writes the snapshot's database never committed are removed.
    memory.repair(true).await.unwrap();
    assert_eq!(memory.check().await.unwrap().unfinished, 0);
}

#[tokio::test]
async fn an_interrupted_restore_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let memory = open(&data).await;
    memory
        .put_artifact(&record("DOC-1", "The ledger keeps tokens."), &WordEmbedder)
        .await
        .unwrap();
    let snap = dir.path().join("snap");
    let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
        .await
        .unwrap();
    snapshot::backup(&ops, &snap).await.unwrap();
    memory
        .put_artifact(
            &record("DOC-1", "The ledger keeps card numbers."),
            &WordEmbedder,
        )
        .await
        .unwrap();
    drop((memory, ops));

    // Staged as a restore would stage, then stopped before anything was swapped in.
    let root = data.root();
    std::fs::copy(snap.join("vigil.db"), root.join("vigil.db-restoring")).unwrap();
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(snap.join("lance"))
        .arg(root.join("lance.restoring"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(
        root.join(snapshot::RESTORE_MARKER),
        "restore staged: database and memory\n",
    )
    .unwrap();

    let memory = open(&data).await;
    assert!(!root.join(snapshot::RESTORE_MARKER).exists());
    assert_eq!(memory.latest_version("DOC-1").await.unwrap().unwrap().0, 1);
    assert_eq!(
        memory.latest_text("DOC-1").await.unwrap().as_deref(),
        Some("The ledger keeps tokens.")
    );
    let report = memory.check().await.unwrap();
    assert_eq!((report.versions, report.complete), (1, 1), "{report:?}");
}

/// Every file under `dir`, by path.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_snapshot_with_a_file_missing_or_changed_is_refused_and_nothing_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let memory = open(&data).await;
    for i in 0..3 {
        let text = format!("Service {i} keeps card numbers in vault {i}.");
        memory
            .put_artifact(&record(&format!("DOC-{i}"), &text), &WordEmbedder)
            .await
            .unwrap();
    }
    let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
        .await
        .unwrap();
    let snap = dir.path().join("snap");
    let info = snapshot::backup(&ops, &snap).await.unwrap();
    let files = files_under(&snap);
    // Every file but the description is recorded, and private whatever the umask.
    assert_eq!(info.files.len(), files.len() - 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let open: Vec<_> = files.iter().filter(|f| mode(f) != 0o600).collect();
        assert!(open.is_empty(), "not 0600: {open:?}");
        let table = snap.join("lance").join("chunks.lance");
        assert_eq!((mode(&table), mode(&table.join("data"))), (0o700, 0o700));
    }
    memory
        .put_artifact(&record("DOC-0", "Service 0 now tokenizes."), &WordEmbedder)
        .await
        .unwrap();
    drop((memory, ops));

    let data_file = files
        .iter()
        .find(|f| {
            f.extension().is_some_and(|e| e == "lance")
                && f.to_string_lossy().contains("chunks.lance/data")
        })
        .unwrap()
        .clone();
    let original = std::fs::read(&data_file).unwrap();
    let after_refusal = |why: &str| {
        let root = data.root();
        assert!(
            !root.join("vigil.db-restoring").exists(),
            "{why}: staged database left"
        );
        assert!(
            !root.join("lance.restoring").exists(),
            "{why}: staged memory left"
        );
        assert!(!root.join(snapshot::RESTORE_MARKER).exists(), "{why}");
    };

    // A data file deleted: refused before anything is copied.
    std::fs::remove_file(&data_file).unwrap();
    let err = snapshot::restore(&data, &snap).unwrap_err().to_string();
    assert!(err.contains("is missing"), "{err}");
    after_refusal("missing");

    // The same length, other bytes: found while copying, and the staged copies removed.
    let mut changed = original.clone();
    changed[0] ^= 0xff;
    std::fs::write(&data_file, &changed).unwrap();
    let err = snapshot::restore(&data, &snap).unwrap_err().to_string();
    assert!(
        err.contains("has changed since the snapshot was taken"),
        "{err}"
    );
    after_refusal("changed");

    // Cut short.
    std::fs::write(&data_file, &original[..original.len() / 2]).unwrap();
    let err = snapshot::restore(&data, &snap).unwrap_err().to_string();
    assert!(err.contains("bytes"), "{err}");
    after_refusal("short");

    // The live stores were left as they were: DOC-0 still at its second version.
    let memory = open(&data).await;
    assert_eq!(memory.latest_version("DOC-0").await.unwrap().unwrap().0, 2);
    drop(memory);

    // A file the snapshot never recorded is not brought in.
    std::fs::write(&data_file, &original).unwrap();
    let extra = data_file.with_file_name("extra.lance");
    std::fs::write(&extra, b"not memory").unwrap();
    let err = snapshot::restore(&data, &snap).unwrap_err().to_string();
    assert!(err.contains("is not one the snapshot recorded"), "{err}");
    after_refusal("extra");
    std::fs::remove_file(&extra).unwrap();

    // Copies left by a restore stopped while staging are removed at the next open.
    std::fs::write(data.root().join("vigil.db-restoring"), b"half").unwrap();
    std::fs::create_dir_all(data.root().join("lance.restoring").join("chunks.lance")).unwrap();
    drop(open(&data).await);
    assert!(!data.root().join("vigil.db-restoring").exists());
    assert!(!data.root().join("lance.restoring").exists());

    // Put back, the snapshot restores.
    snapshot::restore(&data, &snap).unwrap();
    let memory = open(&data).await;
    assert_eq!(memory.latest_version("DOC-0").await.unwrap().unwrap().0, 1);
    let report = memory.check().await.unwrap();
    assert_eq!((report.versions, report.complete), (3, 3), "{report:?}");
}

#[tokio::test]
async fn memory_an_older_release_kept_in_sqlite_moves_into_lancedb() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
        .await
        .unwrap();
    drop(ops);
    // Rows as the previous release wrote them.
    let blob = |v: Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let conn = rusqlite::Connection::open(data.ops_db()).unwrap();
    for (version, text) in [
        (1, "Cards are stored in the ledger."),
        (2, "Cards are tokenized."),
    ] {
        conn.execute(
            "INSERT INTO mem_artifacts (artifact_id, version, tool, content_hash, title, text, \
             team, created_at) VALUES ('PAY-1', ?1, 'jira', ?2, 'Pay', ?3, 'payments', 1)",
            rusqlite::params![version, format!("h{version}"), text],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mem_chunks (artifact_id, version, ordinal, tool, team, created_at, \
             heading, text, text_hash, vector) VALUES ('PAY-1', ?1, 0, 'jira', 'payments', 1, \
             'Design', ?2, 'x', ?3)",
            rusqlite::params![version, text, blob(words_vector(text))],
        )
        .unwrap();
    }
    let decision = serde_json::json!({
        "id": "d1", "kind": "policy", "scope": "pattern", "rationale": "no plain HTTP",
        "created_at_ms": 1
    });
    conn.execute(
        "INSERT INTO mem_decisions (id, body, text, created_at, vector) VALUES ('d1', ?1, \
         'no plain HTTP', 1, ?2)",
        rusqlite::params![decision.to_string(), blob(words_vector("no plain HTTP"))],
    )
    .unwrap();
    drop(conn);

    let memory = open(&data).await;
    assert_eq!(
        memory.latest_version("PAY-1").await.unwrap(),
        Some((2, "h2".to_owned()))
    );
    let hits = search(&memory, "cards", 10).await;
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(
        (hits[0].version, hits[0].text.as_str()),
        (2, "Cards are tokenized.")
    );
    assert_eq!(memory.counts("PAY-1").await.unwrap(), (2, 2));
    let decisions = memory.decisions().await.unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].decision.rationale, "no plain HTTP");
    // The moved tables are emptied and the versions recorded, so the move happens once.
    let conn = rusqlite::Connection::open(data.ops_db()).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM mem_chunks) + (SELECT count(*) FROM mem_decisions)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    drop(memory);
    let memory = open(&data).await;
    assert_eq!(memory.table_rows().await.unwrap(), [2, 2, 0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_stay_right_once_the_vector_index_exists_and_rows_arrive_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let memory = open(&DataDir::new(dir.path())).await;
    // Enough chunks for the vector index: 2,100 documents of ten sections.
    let vocabulary: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    let mut state: u64 = 7;
    let mut word = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        vocabulary[(state >> 33) as usize % vocabulary.len()].clone()
    };
    let mut batch = Vec::new();
    for d in 0..2_100 {
        let sections = (0..10)
            .map(|s| {
                let text: Vec<String> = (0..12).map(|_| word()).collect();
                (format!("S{s}"), text.join(" "))
            })
            .collect();
        batch.push(ArtifactRecord {
            artifact_id: format!("SYN-{d}"),
            tool: "jira".to_owned(),
            title: format!("SYN-{d}"),
            sections,
            created_at_ms: 1,
            ..ArtifactRecord::default()
        });
    }
    memory.put_artifacts(&batch, &WordEmbedder).await.unwrap();
    memory.optimize().await.unwrap();
    assert!(memory
        .indexes()
        .await
        .unwrap()
        .iter()
        .any(|i| i == "vector"));

    let needle = "Refund tokens are signed with the payments HSM before the ledger accepts them.";
    let hits = search(&memory, needle, 5).await;
    assert!(hits.iter().all(|h| h.artifact_id != "NEEDLE"));
    memory
        .put_artifact(&record("NEEDLE", needle), &WordEmbedder)
        .await
        .unwrap();
    // A row newer than the index is found, by meaning and by words.
    let hits = search(&memory, "payments HSM refund tokens", 5).await;
    assert_eq!(hits[0].artifact_id, "NEEDLE", "{hits:#?}");
    assert_eq!((hits[0].vector_rank, hits[0].text_rank), (Some(1), Some(1)));
    // Folded into the index, still found.
    memory.optimize().await.unwrap();
    let hits = search(&memory, "payments HSM refund tokens", 5).await;
    assert_eq!(hits[0].artifact_id, "NEEDLE", "{hits:#?}");
    // An indexed document's own section is found among 21,000 chunks.
    let probe = batch[1234].sections[3].1.clone();
    let hits = search(&memory, &probe, 5).await;
    assert_eq!(hits[0].artifact_id, "SYN-1234", "{hits:#?}");
}
