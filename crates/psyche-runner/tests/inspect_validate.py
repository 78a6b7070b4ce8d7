"""Validate psyche's Inspect export: schema from `inspect log schema`, then read_eval_log.

Usage: python inspect_validate.py <inspect-binary> <expected-samples> <log.json>...
Prints one line of facts per log on success; exits non-zero with the validation error otherwise.
"""
import json
import subprocess
import sys

import jsonschema
from inspect_ai.log import read_eval_log

inspect_bin, expected, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
schema_doc = json.loads(subprocess.check_output([inspect_bin, "log", "schema"]))
schema = dict(schema_doc)
schema["$ref"] = "#/components/schemas/EvalLog"
validator = jsonschema.Draft202012Validator(schema)


def check(path):
    with open(path) as f:
        doc = json.load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        for e in errors[:10]:
            print("schema error at", "/".join(map(str, e.absolute_path)), ":", e.message[:300])
        sys.exit(1)

    log = read_eval_log(path)
    assert log.status == "success", log.status
    assert log.samples is not None and len(log.samples) == expected, len(log.samples or [])
    assert log.results is not None and log.results.scores, "no results"
    s = log.samples[0]
    assert s.output.completion == s.messages[-1].text, (s.output.completion, s.messages[-1])
    scorers = sorted({k for smp in log.samples for k in (smp.scores or {})})
    print(json.dumps({
        "samples": len(log.samples),
        "model": log.eval.model,
        "scorers": scorers,
        "metrics": {sc.name: {k: m.value for k, m in sc.metrics.items()} for sc in log.results.scores},
        "first_epoch": s.epoch,
    }))


for p in paths:
    check(p)
