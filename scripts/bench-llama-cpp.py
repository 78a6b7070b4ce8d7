#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) side of psyche-local's benchmark, same GGUF, same workloads.

Usage:
    scripts/llama-cpp-venv.sh                 # installs llama-cpp-python into .venv-llama
    .venv-llama/bin/python scripts/bench-llama-cpp.py [--threads N] [--model PATH] [--eval-n N]
        [--sections pp,tg,eval,gen]

Workloads (as in benches/local_report.rs):
  pp512   one 512-token prompt ("The quick brown fox ..." x 60), tok/s
  tg      128 greedy tokens, single stream, tok/s (prefill excluded)
  eval    full next-token distributions (softmax over the whole vocabulary) of the same 1,000
          chat prompts, prompts/s; llama-cpp-python's high-level API runs one sequence at a
          time, so prompts are evaluated one after another
  gen32   32 generations of 64 tokens, one after another, generated tok/s summed

The model defaults to psyche's cache ($PSYCHE_HOME/models or ~/.cache/psyche/models).
"""
import argparse
import math
import os
import time

import numpy as np
from llama_cpp import Llama, llama_get_logits_ith

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
TEMPLATES = [
    "Is a {} bigger than a house? Answer Yes or No.",
    "What colour is a {}?",
    "Name one fact about a {}.",
    "Would you like to own a {}? Answer Yes or No.",
    "How heavy is a {}?",
    "Is a {} alive? Answer Yes or No.",
    "Describe a {} in one word.",
]
NOUNS = ["cat", "car", "tree", "river", "phone", "lamp", "horse", "apple", "cloud", "bridge",
         "guitar", "rock", "ship", "book", "candle", "shoe", "whale", "clock", "pencil", "mountain"]


def chat(q):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
            "<|im_start|>assistant\n")


def eval_prompts(n=1000):
    return [TEMPLATES[i % len(TEMPLATES)].replace("{}", NOUNS[(i * 13 + i // 7) % len(NOUNS)])
            for i in range(n)]


def default_model():
    home = os.environ.get("PSYCHE_HOME")
    base = os.path.join(home, "models") if home else os.path.expanduser("~/.cache/psyche/models")
    return os.path.join(base, "SmolLM2-135M-Instruct.Q4_1.gguf")


def last_logprobs(llm):
    n_vocab = llm.n_vocab()
    ptr = llama_get_logits_ith(llm.ctx, -1)
    logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)
    m = logits.max()
    return logits - (m + math.log(np.exp(logits - m).sum()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--eval-n", type=int, default=1000, help="eval prompts (first N of the 1,000)")
    ap.add_argument("--sections", default="pp,tg,eval,gen", help="comma-separated subset")
    args = ap.parse_args()
    t = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=2048, n_batch=512, n_threads=args.threads,
                n_threads_batch=args.threads, logits_all=False, verbose=False)
    print(f"load: {time.perf_counter() - t:.2f} s (threads {args.threads})")

    sections = set(args.sections.split(","))

    if "pp" in sections:
        text = "The quick brown fox jumps over the lazy dog. " * 60
        toks = llm.tokenize(text.encode(), add_bos=False, special=True)[:512]
        best = float("inf")
        for _ in range(3):
            llm.reset()
            t = time.perf_counter()
            llm.eval(toks)
            best = min(best, time.perf_counter() - t)
        print(f"pp512: {512 / best:.1f} tok/s")

    if "tg" in sections:
        prompt = llm.tokenize(chat("Write a long story about a dragon who learns to fly.").encode(),
                              add_bos=False, special=True)
        llm.reset()
        llm.eval(prompt)
        nxt = int(np.argmax(last_logprobs(llm)))
        t = time.perf_counter()
        for _ in range(128):
            llm.eval([nxt])
            nxt = int(np.argmax(last_logprobs(llm)))
        print(f"tg (single stream, 128 tokens): {128 / (time.perf_counter() - t):.1f} tok/s")

    if "eval" in sections:
        prompts = [llm.tokenize(chat(q).encode(), add_bos=False, special=True)
                   for q in eval_prompts(args.eval_n)]
        t = time.perf_counter()
        for p in prompts:
            llm.reset()
            llm.eval(p)
            last_logprobs(llm)
        s = time.perf_counter() - t
        print(f"eval: {len(prompts)} full distributions in {s:.1f} s = {len(prompts) / s:.2f} prompts/s")

    if "gen" in sections:
        t = time.perf_counter()
        total = 0
        for i in range(32):
            out = llm.create_completion(chat(f"Tell me something about the number {i}."), max_tokens=64,
                                        temperature=0.8, seed=i)
            total += out["usage"]["completion_tokens"]
        s = time.perf_counter() - t
        print(f"batch-32 generation (sequential): {total} tokens in {s:.1f} s = {total / s:.1f} generated tok/s")


if __name__ == "__main__":
    main()
