#!/usr/bin/env python3
"""Compares the GPU cost model with a measured benchmark run.

    scripts/model-check.py bench/results/cuda-DATE.json

ttl-bench --device cuda records, per row, the median time measured (ms) and the plan's cost-model estimate
(model_ms, from ttl_plan_info_t.estimated_us). AUTO only needs the model to rank the candidates of a row the way
the measurements do, so this prints:
  1. per algorithm, the spread of measured / model (a family whose median is far from 1 has a rate or a launch
     cost to rescale: src/cuda/plan_common.h for FC, the constants at the top of src/cuda/conv_plan.cu for conv);
  2. every row where the model's fastest libttl algorithm is not the measured fastest, with the time lost.
Exit status 0; 2 when the file has no usable rows.
"""
import json
import statistics
import sys
from collections import defaultdict

# AUTO rows are the model's choice itself; the named algorithms are what it chooses between.
SKIP_ALGOS = {"auto", "auto_tuned", "auto_3xtf32", "auto_tuned_3xtf32", "cublas", "cudnn", "cublas_tf32", "cudnn_tf32"}
# The tensor-core (3xTF32) forms get their measured / model spread (conv plans price them as FFMA, FC tiles at
# TTL_COST_MMA_TF32_SLOTS, until a measured rate says otherwise) but stay out of the ranking: plain AUTO does not
# choose between them.
MMA_SUFFIX = "_3xtf32"


def usable(row):
    checked = not row.get("check", "").startswith("FAIL")  # a wrong answer's time says nothing
    return row.get("supported") and checked and row.get("ms") is not None and row.get("model_ms") is not None


def main(path):
    with open(path) as f:
        rows = json.load(f)["rows"]
    ratios = defaultdict(list)
    by_problem = defaultdict(list)
    for r in rows:
        if not usable(r) or r["algo"] in SKIP_ALGOS:
            continue
        ratios[r["algo"]].append(r["ms"] / r["model_ms"])
        if not r["algo"].endswith(MMA_SUFFIX):
            by_problem[(r["case"], r["batch"])].append(r)
    if not ratios:
        print("no rows with both a measured time and a model estimate", file=sys.stderr)
        return 2

    print("measured / model, per algorithm (1.0: the model is right; only the ratios between algorithms matter)")
    print(f"{'algorithm':24} {'rows':>5} {'median':>8} {'min':>8} {'max':>8}")
    for algo in sorted(ratios):
        v = ratios[algo]
        print(f"{algo:24} {len(v):5d} {statistics.median(v):8.2f} {min(v):8.2f} {max(v):8.2f}")

    print("\nrows where the model and the measurements disagree on the fastest libttl algorithm")
    print(f"{'case':28} {'batch':>6} {'model picks':>20} {'measured best':>20} {'time lost':>10}")
    wrong = 0
    for (case, batch), cands in sorted(by_problem.items()):
        by_model = min(cands, key=lambda r: r["model_ms"])
        by_time = min(cands, key=lambda r: r["ms"])
        if by_model is by_time:
            continue
        wrong += 1
        lost = by_model["ms"] / by_time["ms"]
        print(f"{case:28} {batch:6d} {by_model['algo']:>20} {by_time['algo']:>20} {lost:9.2f}x")
    print(f"\n{wrong} of {len(by_problem)} rows ranked wrongly")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
