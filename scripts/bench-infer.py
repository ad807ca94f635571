#!/usr/bin/env python3
"""Measures Vigil's local inference against the reference engines; run by scripts/bench-infer.

Modes (each measurement runs in its own process, so load time and peak memory are its own):
  prepare   write the prompt token ids (llama.cpp's tokenizer, the GGUF's chat template) and the
            embedding sentences (from examples/markdown) into a work folder
  llama     prefill and greedy decode with llama-cpp-python on the same token ids; JSON out
  st        embeddings with sentence-transformers on the CPU; JSON out
  table     read the four JSON results and print the comparison table

Figures are medians over --reps runs after one warm-up; peak memory is the process's VmHWM.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Targets from the product's requirements: Vigil / reference at least this much.
DECODE_TARGET = 1.0
EMBED_TARGET = 1.5
LOAD_TARGET_S = 2.0

SYSTEM = (
    "You are a product-security reviewer. Read the design and list its security and privacy "
    "threats (STRIDE and LINDDUN), each with the component it concerns and a mitigation."
)


def peak_rss_mib():
    """Peak resident set size of this process (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def load_llama(model, threads):
    from llama_cpp import Llama

    return Llama(
        model_path=str(model),
        n_ctx=2048,
        n_batch=1024,
        n_ubatch=1024,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )


def prepare(args):
    """Prompt ids and sentences, written where the other modes read them."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import jinja2

    llm = load_llama(args.gguf, 1)
    doc = (REPO / "examples/markdown/telehealth-video-visits.md").read_text()
    # An excerpt of about --prompt-tokens tokens, cut at the tokenizer's own boundaries.
    doc_ids = llm.tokenize(doc.encode(), add_bos=False, special=False)
    excerpt = llm.detokenize(doc_ids[: args.prompt_tokens]).decode(errors="ignore")
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        sys.exit(f"{args.gguf} has no chat template in its metadata")
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Review this design:\n\n" + excerpt},
    ]
    prompt = jinja2.Environment().from_string(template).render(
        messages=messages, add_generation_prompt=True
    )
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    (work / "prompt.txt").write_text(prompt)
    (work / "ids.json").write_text(json.dumps(ids))

    sentences = []
    for path in sorted((REPO / "examples").rglob("*.md")):
        text = re.sub(r"[#*`|>_\[\]]", " ", path.read_text())
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            sentence = " ".join(sentence.split())
            if len(sentence.split()) >= 4 and sentence not in sentences:
                sentences.append(sentence)
    sentences = sentences[: args.sentences]
    if len(sentences) < args.sentences:
        # Fewer distinct sentences than asked for: repeat them (the count is what is timed).
        sentences = (sentences * (args.sentences // max(len(sentences), 1) + 1))[: args.sentences]
    (work / "sentences.json").write_text(json.dumps(sentences, ensure_ascii=False))
    print(f"prompt: {len(ids)} tokens; sentences: {len(sentences)}", file=sys.stderr)


def run_llama(args):
    import numpy as np

    ids = json.loads(Path(args.work, "ids.json").read_text())
    started = time.perf_counter()
    llm = load_llama(args.gguf, args.threads)
    load_s = time.perf_counter() - started

    import llama_cpp

    vocab = llm.n_vocab()

    def last_argmax():
        # Logits of the last evaluated token, read from the context without copying.
        logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(logits, shape=(vocab,))))

    def greedy(prompt, steps):
        llm.reset()
        cpu, started = time.process_time(), time.perf_counter()
        llm.eval(prompt)
        nxt = last_argmax()
        prefill_s = time.perf_counter() - started
        prefill_cpu = time.process_time() - cpu
        cpu, started = time.process_time(), time.perf_counter()
        out = []
        for _ in range(steps):
            out.append(nxt)
            llm.eval([nxt])
            nxt = last_argmax()
        decode_cpu = time.process_time() - cpu
        return prefill_s, time.perf_counter() - started, out, prefill_cpu, decode_cpu

    greedy(ids[:16], 4)
    prefill, decode, tokens, prefill_cpu, decode_cpu = [], [], [], [], []
    for _ in range(args.reps):
        p, d, tokens, pc, dc = greedy(ids, args.decode)
        prefill.append(len(ids) / p)
        decode.append(args.decode / d)
        prefill_cpu.append(pc * 1000 / len(ids))
        decode_cpu.append(dc * 1000 / args.decode)
    print(
        json.dumps(
            {
                "engine": "llama.cpp (llama-cpp-python)",
                "threads": args.threads,
                "load_s": load_s,
                "prompt_tokens": len(ids),
                "decode_tokens": args.decode,
                "prefill_tok_s": median(prefill),
                "decode_tok_s": median(decode),
                "prefill_tok_s_all": prefill,
                "decode_tok_s_all": decode,
                "prefill_cpu_ms_per_token": median(prefill_cpu),
                "decode_cpu_ms_per_token": median(decode_cpu),
                "generated": tokens,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def run_st(args):
    import shutil
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer, models

    sentences = json.loads(Path(args.work, "sentences.json").read_text())
    model_dir = Path(args.embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        # The same three files Vigil loads, and nothing else from the folder or the network.
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            shutil.copy(model_dir / name, Path(tmp) / name)
        started = time.perf_counter()
        transformer = models.Transformer(tmp, max_seq_length=256)
        pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
        model = SentenceTransformer(
            modules=[transformer, pooling, models.Normalize()], device="cpu"
        )
        load_s = time.perf_counter() - started

    model.encode(sentences, batch_size=args.batch)
    rates = []
    for _ in range(args.reps):
        started = time.perf_counter()
        model.encode(sentences, batch_size=args.batch)
        rates.append(len(sentences) / (time.perf_counter() - started))
    print(
        json.dumps(
            {
                "engine": f"sentence-transformers {__import__('sentence_transformers').__version__}"
                f" (torch {torch.__version__}, CPU)",
                "threads": torch.get_num_threads(),
                "load_s": load_s,
                "sentences": len(sentences),
                "batch": args.batch,
                "embeddings_s": median(rates),
                "embeddings_s_all": rates,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def table(args):
    work = Path(args.work)
    read = lambda name: json.loads((work / name).read_text())  # noqa: E731
    vd, ld = read("vigil-decode.json"), read("llama-decode.json")
    ve, se = read("vigil-embed.json"), read("st-embed.json")

    rows = []

    def ratio_row(figure, vigil, ref, unit, target):
        ratio = vigil / ref if ref else float("nan")
        met = "-" if target is None else ("met" if ratio >= target else "NOT MET")
        goal = "-" if target is None else f">= {target:.1f}x"
        rows.append((figure, f"{vigil:.1f} {unit}", f"{ref:.1f} {unit}", f"{ratio:.2f}x", goal, met))

    def load_row(figure, vigil, ref):
        met = "met" if vigil < LOAD_TARGET_S else "NOT MET"
        rows.append(
            (figure, f"{vigil:.2f} s", f"{ref:.2f} s", f"{vigil / ref:.2f}x", f"< {LOAD_TARGET_S:.0f} s", met)
        )

    def mem_row(figure, vigil, ref):
        rows.append((figure, f"{vigil:.0f} MiB", f"{ref:.0f} MiB", f"{vigil / ref:.2f}x", "-", "-"))

    ratio_row("prefill tokens/s", vd["prefill_tok_s"], ld["prefill_tok_s"], "tok/s", None)
    ratio_row("decode tokens/s", vd["decode_tok_s"], ld["decode_tok_s"], "tok/s", DECODE_TARGET)
    if "decode_cpu_ms_per_token" in vd and "decode_cpu_ms_per_token" in ld:
        # CPU time per token (all threads): on a shared machine, the work each engine does.
        ratio_row("prefill CPU ms/token", vd["prefill_cpu_ms_per_token"],
                  ld["prefill_cpu_ms_per_token"], "ms", None)
        ratio_row("decode CPU ms/token", vd["decode_cpu_ms_per_token"],
                  ld["decode_cpu_ms_per_token"], "ms", None)
    if "baseline" in vd:
        base = vd["baseline"]
        ratio_row(f"prefill tokens/s, {base['engine']}", base["prefill_tok_s"], ld["prefill_tok_s"],
                  "tok/s", None)
        ratio_row(f"decode tokens/s, {base['engine']}", base["decode_tok_s"], ld["decode_tok_s"],
                  "tok/s", None)
    ratio_row("embeddings/s", ve["embeddings_s"], se["embeddings_s"], "/s", EMBED_TARGET)
    load_row("chat model load", vd["load_s"], ld["load_s"])
    load_row("embeddings model load", ve["load_s"], se["load_s"])
    mem_row("chat peak memory", vd["peak_rss_mib"], ld["peak_rss_mib"])
    mem_row("embeddings peak memory", ve["peak_rss_mib"], se["peak_rss_mib"])

    head = ("figure", "Vigil", "reference", "ratio", "target", "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print()
    print(f"chat: {vd['prompt_tokens']} prompt tokens, {vd['decode_tokens']} greedy decode tokens;"
          f" Vigil {vd['engine']}, reference {ld['engine']}")
    print(f"load average when the table was written: {os.getloadavg()[0]:.2f}")
    print(f"embeddings: {ve['sentences']} sentences, batch {ve['batch']}; reference {se['engine']}")
    print(f"threads: Vigil {vd['threads']}/{ve['threads']}, reference {ld['threads']}/{se['threads']};"
          f" medians of {len(vd['decode_tok_s_all'])} runs after a warm-up")
    print()
    print(line(head))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))
    same = 0
    for a, b in zip(vd["generated"], ld["generated"]):
        if a != b:
            break
        same += 1
    print()
    print(f"greedy tokens identical to the reference before the first difference: {same} of"
          f" {len(ld['generated'])} (the engines round differently, so long runs may part)")
    summary = {
        "decode_ratio": vd["decode_tok_s"] / ld["decode_tok_s"],
        "prefill_ratio": vd["prefill_tok_s"] / ld["prefill_tok_s"],
        "embeddings_ratio": ve["embeddings_s"] / se["embeddings_s"],
    }
    (work / "summary.json").write_text(json.dumps(summary))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["prepare", "llama", "st", "table"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--gguf")
    parser.add_argument("--embeddings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=480)
    args = parser.parse_args()
    {"prepare": prepare, "llama": run_llama, "st": run_st, "table": table}[args.mode](args)


if __name__ == "__main__":
    main()
