#!/usr/bin/env python3
"""Markdown tables of a `distill sweep` directory (its sweep.csv), for README and BENCHMARKS.

For every technique: the (T, alpha) with the best mean validation accuracy over seeds, chosen on
validation only, and its test accuracy (mean and sample sd over seeds) beside the label-only
baseline's. Then the whole grid: mean validation accuracy (sd) per technique, alpha and T.

Usage: python3 scripts/sweep_table.py SWEEP_DIR
"""
import csv
import statistics
import sys
from collections import defaultdict


def mean_sd(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1] + "/sweep.csv")))
    baseline = [r for r in rows if r["kind"] == "baseline"]
    groups = defaultdict(list)
    for r in rows:
        if r["kind"] == "distilled":
            groups[(r["technique"], float(r["temperature"]), float(r["alpha"]))].append(r)
    b_val = mean_sd([float(r["validation_accuracy"]) for r in baseline])
    b_test = mean_sd([float(r["test_accuracy"]) for r in baseline])
    seeds = sorted({r["seed"] for r in rows})
    print(f"Seeds {', '.join(seeds)}; mean ± sample sd over seeds; each technique's (T, alpha) chosen on validation.\n")
    print("| technique | chosen T | chosen alpha | validation | test | test − baseline (points) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| label-only baseline | | | {100 * b_val[0]:.2f}% ± {100 * b_val[1]:.2f} | {100 * b_test[0]:.2f}% ± {100 * b_test[1]:.2f} | |")
    techniques = []
    for (technique, _, _) in groups:
        if technique not in techniques:
            techniques.append(technique)
    for technique in techniques:
        candidates = {key: runs for key, runs in groups.items() if key[0] == technique}
        key = max(candidates, key=lambda k: statistics.mean(float(r["validation_accuracy"]) for r in candidates[k]))
        runs = candidates[key]
        val = mean_sd([float(r["validation_accuracy"]) for r in runs])
        test = mean_sd([float(r["test_accuracy"]) for r in runs])
        t = "learned (from 11)" if technique == "ctkd" else f"{key[1]:g}"
        print(f"| {technique} | {t} | {key[2]:g} | {100 * val[0]:.2f}% ± {100 * val[1]:.2f} | "
              f"{100 * test[0]:.2f}% ± {100 * test[1]:.2f} | {100 * (test[0] - b_test[0]):+.2f} |")
    temperatures = sorted({k[1] for k in groups if k[0] != "ctkd"})
    print("\nValidation accuracy (%), mean (sd) over seeds:\n")
    print("| technique | alpha | " + " | ".join(f"T {t:g}" for t in temperatures) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in temperatures) + " |")
    for technique in techniques:
        for alpha in sorted({k[2] for k in groups if k[0] == technique}):
            cells = []
            for t in temperatures:
                runs = groups.get((technique, t, alpha)) or (groups.get((technique, 11.0, alpha)) if technique == "ctkd" and t == temperatures[0] else None)
                if not runs:
                    cells.append("")
                    continue
                m, s = mean_sd([float(r["validation_accuracy"]) for r in runs])
                diverged = sum(1 for r in runs if r.get("note") == "diverged")
                mark = f" [{diverged} diverged]" if diverged else ""
                cells.append(f"{'learned T: ' if technique == 'ctkd' else ''}{100 * m:.2f} ({100 * s:.2f}){mark}")
            label = "ctkd (learned T)" if technique == "ctkd" else technique
            print(f"| {label} | {alpha:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
