#!/usr/bin/env python3
"""Writes the reference token ids the chat tokenizer test compares Vigil's tokenizer against.

Loads the tokenizer and chat template from the SmolLM2 GGUF in the models folder with the
`transformers` GGUF loader (which reads the vocabulary, merges and template from the GGUF's
metadata, as Vigil does; fetch the model with scripts/fetch-models) and writes
crates/vigil-infer/tests/fixtures/chat-tokens.json: texts with their token ids (no special
tokens added), and conversations with the prompt text and ids the chat template gives and the
first tokens of a greedy answer from the same weights, de-quantized to float32 and run by
transformers on the CPU (Vigil runs them quantized, so only the first few must agree).

Needs: pip install transformers tokenizers gguf torch accelerate (in a virtual environment).
Usage: scripts/chat-tokens-reference.py [GGUF]   (default: models/SmolLM2-135M-Instruct.Q4_1.gguf)
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crates/vigil-infer/tests/fixtures/chat-tokens.json"
DEFAULT_GGUF = REPO / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY_TOKENS = 24

TEXTS = [
    "Hello, world!",
    "The payment service stores card numbers in PostgreSQL without encryption.",
    "  leading spaces, trailing spaces  ",
    "tabs\tand\nnewlines\n\n\nand  double  spaces",
    "Numbers: 0, 7, 42, 1234567890, 3.14159, -12e3, 0x1F",
    "fn main() {\n    let x: Vec<u8> = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
    "def f(a, b):\n\treturn {'a': a, \"b\": b}  # comment\n",
    "SELECT * FROM users WHERE email = 'a@b.c' AND id <> 5;",
    "café naïve résumé Zürich Ægir",
    "日本語のテキストと中文文本",
    "Привет, мир! Γειά σου κόσμε.",
    "emoji 🎉🔐👩‍💻 and flags 🇫🇷",
    "don't won't I'm you're they've we'll she'd IT'S",
    "<|im_start|>user\nhi<|im_end|>\n",
    "a<|im_end|>b<|endoftext|>c",
    "\u00a0non-breaking\u2003em space\u200bzero width",
    "{\"key\": [1, 2, {\"nested\": null}], \"ok\": true}",
    "",
    " ",
    "\n",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is STRIDE?"}],
    [
        {"role": "system", "content": "You are a security reviewer. Answer briefly."},
        {"role": "user", "content": "The login form posts passwords over HTTP. Risk?"},
        {"role": "assistant", "content": "Credentials can be intercepted: use TLS."},
        {"role": "user", "content": "And the session cookie?"},
    ],
]


def main() -> int:
    gguf = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GGUF
    if not gguf.is_file():
        sys.exit(f"{gguf} is missing: run scripts/fetch-models first")
    os.environ["HF_HUB_OFFLINE"] = "1"

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    fixture = {
        "model": gguf.name,
        "generator": "scripts/chat-tokens-reference.py (transformers GGUF tokenizer loader)",
        "texts": [
            {"text": text, "ids": tokenizer.encode(text, add_special_tokens=False)}
            for text in TEXTS
        ],
        "conversations": [],
    }
    for messages in CONVERSATIONS:
        prompt = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        output = model.generate(
            torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False
        )
        fixture["conversations"].append(
            {
                "messages": messages,
                "prompt": prompt,
                "ids": ids,
                "greedy_ids": output[0][len(ids) :].tolist(),
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(TEXTS)} texts and {len(CONVERSATIONS)} conversations to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
