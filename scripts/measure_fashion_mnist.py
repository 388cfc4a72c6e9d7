#!/usr/bin/env python3
"""The measured results of README.md and BENCHMARKS.md: the runs of the PyTorch reference recipes
(../shared/reference/cnn_teacher_kd.py, cnn_fewlabels.py, kd_accuracy.py), done with `distill`.

Per seed: the CNN teacher (8 epochs, 2-pixel jitter); the students 784-800-800-10 and 784-32-10
on the full labelled set, label-only and distilled at T in {1, 2, 4, 8} x alpha in {0.7, 0.9}
(15 epochs each; the setting is chosen on the validation split); the same students with labels
for 2,000 images: label-only, distilled on the 2,000, distilled with the unlabelled rest (6,000
steps each, T 4, alpha 0.7); and, with --hinton, Hinton's MLP teacher (784-1200-1200-10, dropout
0.5, input dropout 0.2, 20 epochs). Results go to OUT/results.jsonl; a Markdown table is printed.

Run: python3 scripts/measure_fashion_mnist.py --seeds 0 [--hinton] [--out measure]
     python3 scripts/measure_fashion_mnist.py --table [--out measure]   (the table of every seed so far)
"""
import argparse, json, os, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--seeds", default="0")
p.add_argument("--out", default="measure")
p.add_argument("--distill", default=".build/release/distill")
p.add_argument("--hinton", action="store_true")
p.add_argument("--table", action="store_true", help="print the table of OUT/results.jsonl (all seeds) and stop")
a = p.parse_args()


def table(path):
    """Mean and sample sd over seeds of every run; full-label distillation picks, per seed, the
    setting with the best validation accuracy."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    seeds = sorted({r['seed'] for r in rows})
    def fmt(vals):
        m = statistics.mean(vals); s = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{100*m:.2f}% ± {100*s:.2f}"
    order = [
     ("CNN teacher", "CNN teacher `cnn:32,64/fc:256`, dropout 0.3, jitter 2, 8 epochs", "90.8 to 91.7%"),
     ("Hinton MLP teacher 784-1200-1200-10", "Hinton's MLP teacher 784-1200-1200-10, dropout 0.5/0.2, 20 epochs", "88.1%"),
     (None, "**All 55,000 labels**", ""),
     ("784-800-800-10 full labels, label-only", "784-800-800-10, labels only (15 epochs)", "89.75%"),
     ("784-800-800-10 full labels, distilled", "784-800-800-10, distilled, T and alpha chosen on validation per seed", "89.81% at best"),
     ("784-32-10 full labels, label-only", "784-32-10, labels only", "87.45%"),
     ("784-32-10 full labels, distilled", "784-32-10, distilled, T and alpha chosen on validation per seed", "87.25% at best"),
     (None, "**Labels for 2,000 images** (6,000 steps each)", ""),
     ("784-800-800-10 2,000 labels, label-only", "784-800-800-10, labels only", "82.1%"),
     ("784-800-800-10 2,000 labels, distilled on the 2,000", "784-800-800-10, distilled on the 2,000 (T 4, alpha 0.7)", "85.9%"),
     ("784-800-800-10 2,000 labels, distilled with the unlabelled rest", "784-800-800-10, distilled with the 53,000 unlabelled images", "88.6%"),
     ("784-32-10 2,000 labels, label-only", "784-32-10, labels only", "80.7%"),
     ("784-32-10 2,000 labels, distilled on the 2,000", "784-32-10, distilled on the 2,000", "82.6%"),
     ("784-32-10 2,000 labels, distilled with the unlabelled rest", "784-32-10, distilled with the 53,000 unlabelled images", "85.4%"),
    ]
    print(f"| run (Fashion-MNIST, seeds {', '.join(map(str, seeds))}) | test accuracy, mean ± sd | per seed | validation | chosen (T, alpha) | PyTorch reference (seed 0) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key, label, ref in order:
        if key is None:
            print(f"| {label} | | | | | |"); continue
        if key.endswith("distilled"):
            picked = []
            for s in seeds:
                cand = [r for r in rows if r['seed'] == s and r['name'].startswith(key + " T")]
                if cand: picked.append(max(cand, key=lambda r: r['val']))
            rs = picked
            chosen = ", ".join(f"T {r['T']}, a {r['alpha']}" for r in rs)
        else:
            rs = [r for r in rows if r['name'] == key]
            chosen = ""
        if not rs:
            print(f"| {label} | - | - | - | | {ref} |"); continue
        per = ", ".join(f"{100*r['test']:.2f}" for r in sorted(rs, key=lambda r: r['seed']))
        print(f"| {label} | {fmt([r['test'] for r in rs])} | {per} | {fmt([r['val'] for r in rs])} | {chosen} | {ref} |")


if a.table:
    table(os.path.join(a.out, "results.jsonl"))
    sys.exit(0)
os.makedirs(a.out, exist_ok=True)
log = open(os.path.join(a.out, "results.jsonl"), "a")

def run(args):
    t = time.time()
    subprocess.run([a.distill] + args + ["--quiet"], check=True)
    return time.time() - t

def score(model, split):
    out = subprocess.run([a.distill, "eval", "--model", model, "--split", split, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)

def record(name, model, seconds, seed, **extra):
    val, test = score(model, "validation"), score(model, "test")
    row = dict(name=name, seed=seed, val=val["accuracy"], test=test["accuracy"], errors=test["errors"], seconds=round(seconds, 1), **extra)
    print(json.dumps(row), flush=True)
    log.write(json.dumps(row) + "\n"); log.flush()
    return row

rows = []
for seed in [int(s) for s in a.seeds.split(",")]:
    d = os.path.join(a.out, f"seed{seed}")
    os.makedirs(d, exist_ok=True)
    sd = ["--seed", str(seed)]
    teacher = os.path.join(d, "cnn-teacher.safetensors")
    s = run(["train", "--arch", "cnn:32,64/fc:256", "--dropout", "0.3", "--jitter", "2", "--epochs", "8", "--out", teacher] + sd)
    rows.append(record("CNN teacher", teacher, s, seed))
    for arch, tag in (("mlp:800,800", "784-800-800-10"), ("mlp:32", "784-32-10")):
        m = os.path.join(d, f"{tag}-ce.safetensors")
        rows.append(record(f"{tag} full labels, label-only", m, run(["train", "--arch", arch, "--epochs", "15", "--out", m] + sd), seed))
        kd = []
        for T in (1, 2, 4, 8):
            for alpha in (0.7, 0.9):
                m = os.path.join(d, f"{tag}-kd-T{T}-a{alpha}.safetensors")
                sec = run(["distill", "--teacher", teacher, "--arch", arch, "--epochs", "15", "--temperature", str(T), "--alpha", str(alpha), "--out", m] + sd)
                kd.append(record(f"{tag} full labels, distilled T{T} a{alpha}", m, sec, seed, T=T, alpha=alpha))
        best = max(kd, key=lambda r: r["val"])
        rows.append(dict(best, name=f"{tag} full labels, distilled (T {best['T']}, alpha {best['alpha']} by validation)"))
        few = ["--labelled", "2000", "--steps", "6000"]
        m = os.path.join(d, f"{tag}-few-ce.safetensors")
        rows.append(record(f"{tag} 2,000 labels, label-only", m, run(["train", "--arch", arch, "--out", m] + few + sd), seed))
        m = os.path.join(d, f"{tag}-few-kd-labelled.safetensors")
        rows.append(record(f"{tag} 2,000 labels, distilled on the 2,000", m,
                           run(["distill", "--teacher", teacher, "--arch", arch, "--temperature", "4", "--alpha", "0.7",
                                "--labelled-only", "--out", m] + few + sd), seed))
        m = os.path.join(d, f"{tag}-few-kd-all.safetensors")
        rows.append(record(f"{tag} 2,000 labels, distilled with the unlabelled rest", m,
                           run(["distill", "--teacher", teacher, "--arch", arch, "--temperature", "4", "--alpha", "0.7",
                                "--out", m] + few + sd), seed))
    if a.hinton:
        m = os.path.join(d, "hinton-teacher.safetensors")
        rows.append(record("Hinton MLP teacher 784-1200-1200-10", m,
                           run(["train", "--arch", "mlp:1200,1200", "--dropout", "0.5", "--input-dropout", "0.2", "--epochs", "20", "--out", m] + sd), seed))

table(os.path.join(a.out, "results.jsonl"))
