"""PyTorch's side of the memory comparison in BENCHMARKS.md: the job of

    distill distill --data TEXT --teacher TEACHER --arch transformer:layers=1,dim=32,heads=2,context=128 \
        --batch-size 32 --steps STEPS --temperature 2 --alpha 0.5

in PyTorch: a 4 x 256 teacher (pre-LayerNorm, nn.MultiheadAttention, GELU MLP 4x) run in inference
mode on every batch, a 1 x 32 student trained with AdamW on alpha T^2 KL + (1 - alpha) CE at every
position, train.txt memory-mapped (np.memmap), windows of 128 bytes at random offsets; float32,
2 threads. The teacher's weights are random: memory does not depend on their values. Prints the
peak resident memory of the process (ru_maxrss).

Usage: python3 scripts/pytorch_text_distill.py TEXT_DIR STEPS   (torch from `make bench-pytorch`'s venv)
"""
import resource, sys
import numpy as np, torch, torch.nn.functional as F
from torch_lm import LanguageModel

torch.set_num_threads(2)
torch.manual_seed(0)
text, steps = sys.argv[1], int(sys.argv[2])
B, T, temperature, alpha = 32, 128, 2.0, 0.5
data = np.memmap(f"{text}/train.txt", dtype=np.uint8, mode="r")


teacher, student = LanguageModel(4, 256, 4, T).eval(), LanguageModel(1, 32, 2, T)
optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.01)
rng = np.random.default_rng(0)
for step in range(steps):
    offsets = rng.integers(0, len(data) - T - 1, B)
    x = torch.from_numpy(np.stack([data[o:o + T] for o in offsets]).astype(np.int64))
    y = torch.from_numpy(np.stack([data[o + 1:o + T + 1] for o in offsets]).astype(np.int64)).reshape(-1)
    with torch.no_grad():
        soft = F.softmax(teacher(x).reshape(-1, 256) / temperature, dim=-1)
    logits = student(x).reshape(-1, 256)
    kl = F.kl_div(F.log_softmax(logits / temperature, dim=-1), soft, reduction="batchmean")
    loss = alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"PyTorch {torch.__version__}: {steps} steps, loss {loss.item():.3f}, "
      f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
