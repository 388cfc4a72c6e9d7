"""PyTorch's side of DistillBenchmarks transformer: one training step of the same byte-level
pre-LayerNorm transformer language model (token and learned position embeddings, L blocks of
nn.MultiheadAttention with a causal mask and a GELU MLP of width 4D, a final LayerNorm, an untied
head to 256 bytes), cross-entropy at every position, AdamW; float32, batch 32 x context 128,
2 threads. Prints the median step time over rounds, as the Swift benchmark does.

Usage: python3 scripts/pytorch_transformer_step.py [ROUNDS]   (torch from `make bench-pytorch`'s venv)
       python3 scripts/pytorch_transformer_step.py --serve LAYERS DIM HEADS
  --serve: build that model, run a step, print `ready`, then for each line of standard input
  holding a number N run N steps and print the seconds per step (scripts/bench-paired drives it,
  as it drives `DistillBenchmarks transformer --serve`).
"""
import statistics, sys
import torch, torch.nn as nn
from pytorch_step import seconds_per_call
from torch_lm import LanguageModel

torch.set_num_threads(2)
B, T = 32, 128


def make_step(layers, d, heads):
    """A training step of the model on a seeded random batch, as a function of no arguments."""
    torch.manual_seed(1)
    model = LanguageModel(layers, d, heads, T)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, targets = torch.randint(0, 256, (B, T)), torch.randint(0, 256, (B * T,))

    def step():
        loss = nn.functional.cross_entropy(model(ids).reshape(-1, 256), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


if len(sys.argv) == 5 and sys.argv[1] == "--serve":
    step = make_step(*map(int, sys.argv[2:]))
    step()
    print("ready", flush=True)
    for line in sys.stdin:
        print(seconds_per_call(int(line), step), flush=True)
    sys.exit(0)

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
print(f"PyTorch {torch.__version__}, 2 threads; transformer step, batch {B} x context {T}, AdamW; medians:")
for name, (layers, d, heads), repetitions in [("transformer 4 x 256, 4 heads", (4, 256, 4), 1),
                                              ("transformer 1 x 64, 4 heads", (1, 64, 4), 5)]:
    step = make_step(layers, d, heads)
    step()
    s = statistics.median(seconds_per_call(repetitions, step) for _ in range(rounds))
    print(f"{name:42s} {s * 1000:8.2f}  {B * T / s:10.0f} tokens/s")
