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
  judge   (needs --prompts, written by `PSYCHE_BENCH_EXPORT=PATH cargo bench -p psyche --bench
          scoring_cache`) on the EM judge prompts, with llama.cpp's prompt cache (the state keeps
          the previous tokens; each request evaluates only what follows the longest common
          prefix, as llama-cpp-python's completion API does): one first-token pass; option
          probabilities over "0".."100" (303 answer forms + end of turn, each scored from the
          cached prompt); first-token reading (3 greedy tokens, top-20 logprobs) against
          complete-number reading (plus the digit tree of psyche's number judge, prefixes
          below 0.01 not extended)
  hyp     (needs --prompts) constrained hypothetical reading: the next-token distribution of
          each hypothetical prompt with the prompt cache, prompts/s

The model defaults to psyche's cache ($PSYCHE_HOME/models or ~/.cache/psyche/models).
"""
import argparse
import math
import os
import time

import numpy as np
from llama_cpp import Llama, llama_get_logits_ith

from bench_common import default_model, load_avg

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
    ap.add_argument("--prompts", help="JSON of rendered prompts for the judge and hyp sections")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    if sections & {"judge", "hyp"}:
        if not args.prompts:
            ap.error("--prompts is needed for the judge and hyp sections")
        cached_sections(args, sections)
        sections -= {"judge", "hyp"}
        if not sections:
            return
    t = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=2048, n_batch=512, n_threads=args.threads,
                n_threads_batch=args.threads, logits_all=False, verbose=False)
    print(f"load: {time.perf_counter() - t:.2f} s (threads {args.threads})")

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


def log_softmax(row):
    row = row.astype(np.float64)
    m = row.max()
    return row - (m + math.log(np.exp(row - m).sum()))


class Cached:
    """llama.cpp with its prompt cache: the context keeps the last evaluated tokens and a new
    request evaluates only what follows the longest common prefix. Logits come from the last
    position of each decode (`logits_all` crashes this build on long prompts), so a
    continuation is evaluated one token at a time from the cached prompt."""

    def __init__(self, llm):
        self.llm = llm
        self.first = None

    def prompt(self, toks):
        llm = self.llm
        n = llm.n_tokens
        ids = llm.input_ids
        lcp = 0
        while lcp < min(n, len(toks)) and ids[lcp] == toks[lcp]:
            lcp += 1
        if lcp == len(toks):
            lcp -= 1  # re-evaluate the last token for its logits
        llm.n_tokens = lcp
        llm.eval(toks[lcp:])
        self.first = last_logprobs(llm)
        return self.first

    def continuation(self, n_prompt, cont):
        """log P(cont | the first n_prompt cached tokens), after `prompt` of those tokens."""
        llm = self.llm
        llm.n_tokens = n_prompt
        total = self.first[cont[0]]
        for k in range(1, len(cont)):
            llm.eval([cont[k - 1]])
            total += last_logprobs(llm)[cont[k]]
        return total

    def greedy(self, toks, steps):
        first = self.prompt(toks)
        top = np.argpartition(-first, 20)[:20]
        nxt = int(np.argmax(first))
        for _ in range(steps - 1):
            self.llm.eval([nxt])
            nxt = int(np.argmax(last_logprobs(self.llm)))
        self.llm.n_tokens = len(toks)
        return first, top


def digit_tree(c, n_prompt, first, digit_ids, lo=0, hi=100, min_prob=0.01):
    numbers = {str(n) for n in range(lo, hi + 1)}
    prefixes = {n[:k] for n in numbers for k in range(1, len(n) + 1)}
    level = [(d, sum(math.exp(first[i]) for i in digit_ids[d])) for d in "0123456789" if d in prefixes]
    found, calls = {}, 0
    while level:
        nxt = []
        for s, p in level:
            kids = [s + e for e in "0123456789" if s + e in prefixes]
            if p <= 0:
                continue
            if not kids:
                found[s] = p
            elif p < min_prob:
                pass
            else:
                probs = [math.exp(c.continuation(n_prompt, c.llm.tokenize(k.encode(), add_bos=False,
                                                                        special=True)))
                         for k in kids]
                calls += len(kids)
                own = max(p - sum(probs), 0.0)
                if own > 0 and s in numbers:
                    found[s] = own
                nxt.extend(zip(kids, probs))
        level = nxt
    return found, calls


def cached_sections(args, sections):
    import json

    with open(args.prompts) as f:
        prompts = json.load(f)
    llm = Llama(model_path=args.model, n_ctx=2048, n_batch=512, n_threads=args.threads,
                n_threads_batch=args.threads, logits_all=False, verbose=False)
    c = Cached(llm)
    tok = lambda s: llm.tokenize(s.encode(), add_bos=False, special=True)  # noqa: E731
    if "judge" in sections:
        judge = [tok(p) for p in prompts["judge"]]
        number = [tok(p) for p in prompts["number"]]
        digit_ids = {d: [] for d in "0123456789"}
        for i in range(llm.n_vocab()):
            text = llm.detokenize([i]).decode("utf-8", errors="ignore").lstrip()
            if text in digit_ids:
                digit_ids[text].append(i)
        forms = [tok(f + "<|im_end|>") for n in range(101) for f in (str(n), f"({n})", f"{n})")]
        c.prompt(judge[-1])  # warm-up: the template enters the cache
        firsts, options, single, complete, calls = [], [], [], [], []
        for i in range(0, len(judge) - 1, 2):
            a, b = judge[i], judge[i + 1]
            t = time.perf_counter()
            c.prompt(a)
            firsts.append(time.perf_counter() - t)
            t = time.perf_counter()
            c.prompt(b)
            masses = [math.exp(c.continuation(len(b), f)) for f in forms]
            options.append(time.perf_counter() - t)
            assert len(masses) == 303
            a, b = number[i], number[i + 1]
            t = time.perf_counter()
            c.greedy(a, 3)
            single.append(time.perf_counter() - t)
            t = time.perf_counter()
            first, _ = c.greedy(b, 3)
            _, n_calls = digit_tree(c, len(b), first, digit_ids)
            complete.append(time.perf_counter() - t)
            calls.append(n_calls)
        med = lambda v: float(np.median(v))  # noqa: E731
        print(f"llama.cpp judge prompt ({len(judge[0])} tokens), prompt cache: first-token pass "
              f"{med(firsts):.3f} s, option probabilities over 0..100 {med(options):.3f} s = "
              f"{med(options) / med(firsts):.2f}x; load {load_avg()}")
        print(f"llama.cpp number reading: first-token {med(single):.3f} s, complete-number "
              f"{med(complete):.3f} s = {med(complete) / med(single):.2f}x (prefix scores per call "
              f"{calls}); load {load_avg()}")
    if "hyp" in sections:
        hyp = [tok(p) for p in prompts["hypothetical"]]
        t = time.perf_counter()
        for p in hyp:
            lp = c.prompt(p)
            np.argpartition(-lp, 20)[:20]
        s = time.perf_counter() - t
        print(f"llama.cpp hypothetical (constrained), prompt cache: {len(hyp)} prompts in {s:.1f} s "
              f"= {len(hyp) / s:.2f} prompts/s; load {load_avg()}")


if __name__ == "__main__":
    main()
