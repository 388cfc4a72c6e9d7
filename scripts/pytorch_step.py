"""PyTorch's training step on the models of `DistillBenchmarks training`, timed the same way.

Batch 128, SGD momentum 0.9 (lr 0.01), cross-entropy, training mode with the same dropout; each
model alternates 25 rounds of 3 steps and, for the MLPs, 3 replays of the matrix products the step
makes (PyTorch's own GEMM floor: `addmm` forward, `mm` for the weight and input gradients), and
prints medians like the Swift benchmark. The CNN has no floor here: PyTorch convolves with oneDNN
kernels, not im2col GEMMs.

Not part of the project's tests: `make bench-pytorch` runs it beside `DistillBenchmarks training`
in alternation (scripts/bench-vs-pytorch), so both see the same machine load.
Usage: python pytorch_step.py [--threads 2] [--quick] [--case TEXT]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(sizes, hidden_dropout=0.0, input_dropout=0.0):
    """As ../shared/reference/models.py: [Dropout(input)] (Linear, ReLU, [Dropout])... Linear."""
    layers = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if hidden_dropout > 0:
                layers.append(nn.Dropout(hidden_dropout))
    return nn.Sequential(*layers)


def cnn(dropout=0.3):
    """conv32-pool-conv64-pool-fc256 with dropout before fc256, as the reference CNN teacher."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))


def gemm_floor(model, batch):
    """A closure replaying the matrix products of one MLP step on buffers of their own shapes."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    calls = []
    for index, layer in enumerate(linears):
        n, i, o = batch, layer.in_features, layer.out_features
        x, w, b, dy = torch.rand(n, i), torch.rand(o, i), torch.rand(o), torch.rand(n, o)
        y, dw, dx = torch.empty(n, o), torch.empty(o, i), torch.empty(n, i)
        calls.append(lambda x=x, w=w, b=b, y=y: torch.addmm(b, x, w.t(), out=y))
        calls.append(lambda dy=dy, x=x, dw=dw: torch.mm(dy.t(), x, out=dw))
        if index > 0:  # PyTorch skips the input gradient of the first layer too
            calls.append(lambda dy=dy, w=w, dx=dx: torch.mm(dy, w, out=dx))

    def run():
        for call in calls:
            call()
    return run


def seconds_per_call(repetitions, body):
    start = time.perf_counter()
    for _ in range(repetitions):
        body()
    return (time.perf_counter() - start) / repetitions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    cases = [
        ("MLP 784-1200-1200-10, dropout 0.5/0.2", lambda: mlp([784, 1200, 1200, 10], 0.5, 0.2), [784]),
        ("MLP 784-800-800-10", lambda: mlp([784, 800, 800, 10]), [784]),
        ("CNN conv32-conv64-fc256, dropout 0.3", cnn, [1, 28, 28]),
    ]
    batch, rounds, reps = 128, 5 if args.quick else 25, 3
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; training step, batch {batch}, "
          f"{rounds} alternating rounds of {reps} steps and {reps} floors; medians:")
    print("model                                      step ms  GEMM floor ms  step/floor  samples/s")
    for name, make, shape in cases:
        if args.case and args.case not in name:
            continue
        model = make()
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(batch, *shape)
        y = torch.randint(0, 10, (batch,))

        def step():
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        floor = gemm_floor(model, batch) if name.startswith("MLP") else None
        for _ in range(3):
            step()
            if floor:
                floor()
        steps, floors, ratios = [], [], []
        for _ in range(rounds):
            s = seconds_per_call(reps, step)
            steps.append(s)
            if floor:
                f = seconds_per_call(reps, floor)
                floors.append(f)
                ratios.append(s / f)
        s = statistics.median(steps)
        floor_text = f"{statistics.median(floors) * 1000:15.2f}{statistics.median(ratios):12.2f}" if floor else \
            f"{'-':>15}{'-':>12}"
        print(f"{name:42}{s * 1000:8.2f}{floor_text}{batch / s:11.0f}")


if __name__ == "__main__":
    main()
