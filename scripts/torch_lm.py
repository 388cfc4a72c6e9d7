"""The byte-level transformer language model in PyTorch, as Distill builds it: token and learned
position embeddings, pre-LayerNorm blocks (nn.MultiheadAttention with a causal mask, a GELU MLP of
width 4D as nn.Sequential), a final LayerNorm and an untied head. Its state dict's names are the
ones `distill import-torch` reads (tokens, positions, blocks.i.ln_1, .attn, .ln_2, .mlp.0, .mlp.2,
ln, head; the causal mask is a buffer). Shared by the PyTorch scripts of the benchmarks and by
scripts/interop.py."""
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class LanguageModel(nn.Module):
    def __init__(self, layers, d, heads, context):
        super().__init__()
        self.context = context
        self.tokens, self.positions = nn.Embedding(256, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, 256)
        self.register_buffer("mask", torch.triu(torch.ones(context, context, dtype=torch.bool), 1))

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(self.context))
        for block in self.blocks:
            x = block(x, self.mask)
        return self.head(self.ln(x))
