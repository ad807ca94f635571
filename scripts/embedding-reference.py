#!/usr/bin/env python3
"""Writes the reference vectors the embeddings test compares Vigil's embedder against.

Runs sentence-transformers on the CPU with the all-MiniLM-L6-v2 files in the models folder
(the same files Vigil loads; fetch them with scripts/fetch-models) and writes
crates/vigil-infer/tests/fixtures/embeddings.json: the sentences and their vectors, rounded to
six decimals.

Needs: pip install sentence-transformers torch (in a virtual environment).
Usage: scripts/embedding-reference.py [MODEL_DIR]   (default: models/all-MiniLM-L6-v2)
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crates/vigil-infer/tests/fixtures/embeddings.json"
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2

LONG = (
    "The payment service receives card numbers from the mobile app over the public internet, "
    "stores them in a PostgreSQL database in the restricted zone, and forwards settlement "
    "batches to the acquiring bank every night over a site-to-site VPN. "
) * 8

SENTENCES = [
    "The login endpoint accepts a username and password over plain HTTP.",
    "Session tokens are stored in the browser's local storage without expiry.",
    "The admin console is reachable from the internet and has no multi-factor authentication.",
    "Customer records, including dates of birth and addresses, are copied to an S3 bucket "
    "for analytics.",
    "The worker reads jobs from the queue and runs the shell command each job names.",
    "API keys for the payment provider are committed to the repository's config file.",
    "Webhooks from GitHub are accepted without checking the signature header.",
    "All traffic between services is encrypted with mutual TLS.",
    "ok",
    "",
    "Le service d'authentification stocke les mots de passe en clair — données "
    "personnelles, ünïcödé, 日本語のテキスト.",
    LONG,
]


def main() -> int:
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "models/all-MiniLM-L6-v2"
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        if not (model_dir / name).is_file():
            sys.exit(f"{model_dir / name} is missing: run scripts/fetch-models first")

    from sentence_transformers import SentenceTransformer, models

    # Build the pipeline explicitly (Transformer -> mean pooling -> normalise) from a copy of
    # the three files, so nothing else in the folder, and no network, is consulted.
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            shutil.copy(model_dir / name, Path(tmp) / name)
        os.environ["HF_HUB_OFFLINE"] = "1"
        transformer = models.Transformer(tmp, max_seq_length=MAX_SEQ_LENGTH)
        pooling = models.Pooling(
            transformer.get_word_embedding_dimension(), pooling_mode="mean"
        )
        model = SentenceTransformer(
            modules=[transformer, pooling, models.Normalize()], device="cpu"
        )
        vectors = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
        tokens = [len(transformer.tokenizer(s)["input_ids"]) for s in SENTENCES]

    fixture = {
        "model": "all-MiniLM-L6-v2",
        "max_seq_length": MAX_SEQ_LENGTH,
        "generator": "scripts/embedding-reference.py (sentence-transformers, CPU)",
        "cases": [
            {
                "text": text,
                "tokens_untruncated": n,
                "vector": [round(float(x), 6) for x in vector],
            }
            for text, n, vector in zip(SENTENCES, tokens, vectors)
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} vectors of {len(vectors[0])} to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
