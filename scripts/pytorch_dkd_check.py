#!/usr/bin/env python3
"""Does DKD diverge in PyTorch too? The README's ablation finds that the 784-800-800-10 student
distilled with DKD (alpha 1, beta 8, T 4) diverges at learning rate 0.05 (SGD, momentum 0.9,
cosine, batch 128; labels for the first 2,000 of 55,000 training images, the hard term over all
rows, alpha 0.7), with or without a warm-up, and trains at 0.05 / 8. This runs the same student,
the same data and the same teacher logits (`distill logits` of the study's teacher) in PyTorch,
with DKD written as mdistiller writes it (the masked softmaxes of its dkd_loss), and prints for
each learning rate (and warm-up of the DKD term, as mdistiller's `min(epoch / warmup, 1)`) the
step at which the loss stopped being finite, or the validation accuracy after the run.

Usage: .venv-bench/bin/python scripts/pytorch_dkd_check.py TEACHER_LOGITS.npy [DATA_DIR]
       [--steps 6000] [--seed 0]
where TEACHER_LOGITS.npy is `distill logits --model TEACHER --out TEACHER_LOGITS.npy` (the training
file, 60,000 rows; the last 5,000 are the validation split). Needs torch and numpy.
"""
import argparse, math, os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from idx import idx

p = argparse.ArgumentParser()
p.add_argument("logits")
p.add_argument("data", nargs="?", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--steps", type=int, default=6000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(2)

# pixels in [0, 1], as distill reads them
x = torch.from_numpy(idx(os.path.join(a.data, "train-images-idx3-ubyte")).reshape(60000, 784).astype(np.float32) / 255)
y = torch.from_numpy(idx(os.path.join(a.data, "train-labels-idx1-ubyte")).astype(np.int64))
teacher = torch.from_numpy(np.load(a.logits).astype(np.float32))
assert teacher.shape == (60000, 10), f"{a.logits}: expected [60000, 10], got {list(teacher.shape)}"
xtr, ytr, ttr, xva, yva = x[:55000], y[:55000], teacher[:55000], x[55000:], y[55000:]
labelled = torch.zeros(55000, dtype=torch.bool)
labelled[:2000] = True


def dkd(s, t, target, alpha=1.0, beta=8.0, T=4.0):
    """mdistiller's dkd_loss, per row."""
    gt = F.one_hot(target, 10).bool()
    ps, pt = F.softmax(s / T, 1), F.softmax(t / T, 1)
    cat = lambda p: torch.stack([(p * gt).sum(1), (p * ~gt).sum(1)], 1)
    bs, bt = cat(ps), cat(pt)
    tckd = (bt * (bt.log() - bs.log())).sum(1)
    pt2 = F.softmax(t / T - 1000.0 * gt, 1)
    ls2 = F.log_softmax(s / T - 1000.0 * gt, 1)
    nckd = (pt2 * (pt2.clamp_min(1e-30).log() - ls2)).sum(1)
    return T * T * (alpha * tckd + beta * nckd)


def run(lr, warmup):
    torch.manual_seed(100 + a.seed)
    m = nn.Sequential(nn.Linear(784, 800), nn.ReLU(), nn.Linear(800, 800), nn.ReLU(), nn.Linear(800, 10))
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / a.steps)))
    g = torch.Generator().manual_seed(20 + a.seed)
    k = 0
    while k < a.steps:
        perm = torch.randperm(55000, generator=g)
        for i in range(0, 55000 - 127, 128):
            b = perm[i:i + 128]
            s, t, lm = m(xtr[b]), ttr[b], labelled[b]
            target = torch.where(lm, ytr[b], t.argmax(1))
            soft = dkd(s, t, target) * (min((k + 1) / warmup, 1.0) if warmup else 1.0)
            ce = F.cross_entropy(s, ytr[b], reduction="none")
            loss = torch.where(lm, 0.7 * soft + 0.3 * ce, soft).mean()
            if not torch.isfinite(loss):
                return f"diverged at step {k}"
            opt.zero_grad()
            loss.backward()
            opt.step()
            sch.step()
            k += 1
            if k >= a.steps:
                break
    with torch.no_grad():
        return f"validation accuracy {(m(xva).argmax(1) == yva).float().mean().item():.4f}"


for lr, warmup in [(0.05, 0), (0.05, 500), (0.05 / 8, 0)]:
    print(f"DKD (1, 8), T 4, lr {lr:g}, DKD warm-up {warmup} steps, seed {a.seed}: {run(lr, warmup)}",
          flush=True)
