"""A minimal stem-continuation training loop on a built dataset.

A tiny decoder-only transformer reads the context codes, then predicts the target codes, all
codebooks at once per step, with MusicGen's delay pattern (codebook k shifted right by k frames,
so step t predicts codebook 0 of frame t, codebook 1 of frame t-1, ...). The loss is the
cross-entropy over real target positions only; padding and the delay's empty positions carry the
pad id (the codebook size) and are ignored.

    python examples/train_continuation.py demo-dataset --steps 50
    python examples/train_continuation.py s3://bucket/ds-guitar --steps 10000 --device cuda

It prints the training loss every ``--log-every`` steps and the validation loss at the end.
"""
import argparse
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # run from a checkout

from schemas.reader import apply_delay_pattern, describe, open_dataset  # noqa: E402


class TinyContinuation(nn.Module):
    """Embeds every codebook, sums them per step, runs a causal transformer, and predicts the
    next step's code of every codebook."""

    def __init__(self, codebooks: int, codebook_size: int, dim: int = 64, layers: int = 2, heads: int = 4,
                 max_steps: int = 4096):
        super().__init__()
        self.pad_id = codebook_size
        self.embed = nn.ModuleList(nn.Embedding(codebook_size + 1, dim) for _ in range(codebooks))
        self.position = nn.Embedding(max_steps, dim)
        self.segment = nn.Embedding(2, dim)      # 0: context, 1: target
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers)
        self.heads = nn.ModuleList(nn.Linear(dim, codebook_size) for _ in range(codebooks))

    def forward(self, tokens: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        """tokens [B, K, T] (delayed, pad id where empty), segment [T] -> logits [B, K, T, codebook_size]."""
        steps = tokens.shape[-1]
        x = sum(embed(tokens[:, k]) for k, embed in enumerate(self.embed))
        x = x + self.position(torch.arange(steps, device=tokens.device)) + self.segment(segment)
        causal = torch.triu(torch.full((steps, steps), float('-inf'), device=tokens.device), diagonal=1)
        h = self.body(x, mask=causal)
        return torch.stack([head(h) for head in self.heads], dim=1)


def sequence(batch, pad_id: int):
    """Context then target, each with the delay pattern; returns (tokens, segment ids, the
    position where the target starts)."""
    context = apply_delay_pattern(batch['context'], pad_id)
    target = apply_delay_pattern(batch['target'], pad_id)
    tokens = torch.cat([context, target], dim=-1)
    segment = torch.cat([torch.zeros(context.shape[-1], dtype=torch.long),
                         torch.ones(target.shape[-1], dtype=torch.long)])
    return tokens, segment, context.shape[-1]


def loss_of(model, batch, device) -> torch.Tensor:
    """Next-step cross-entropy over the target part (pad positions ignored)."""
    tokens, segment, start = sequence(batch, model.pad_id)
    tokens, segment = tokens.to(device), segment.to(device)
    logits = model(tokens[..., :-1], segment[:-1])               # predicts steps 1..T-1
    labels = tokens[..., 1:].clone()
    labels[..., :start - 1] = model.pad_id                       # learn the target, given the context
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                       ignore_index=model.pad_id)


def _has_split(dataset: str, split: str) -> bool:
    try:
        return bool(describe(dataset, split).urls)
    except ValueError:      # the dataset has no such split
        return False


def train(dataset: str, steps: int = 50, batch_size: int = 8, frames: int = 64, lr: float = 3e-3,
          device: str = 'cpu', log_every: int = 10, seed: int = 0) -> dict:
    """Trains for ``steps`` steps; returns {'losses': [...], 'validation_loss': float or None}."""
    torch.manual_seed(seed)
    info = describe(dataset, 'train')
    codebooks = info.codebooks
    model = TinyContinuation(codebooks, info.codebook_size).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    half = min(frames, info.frames // 2)
    train_set = open_dataset(dataset, 'train', context_frames=half, target_frames=half, seed=seed)
    losses, epoch = [], 0
    while len(losses) < steps:
        train_set.set_epoch(epoch)
        for batch in torch.utils.data.DataLoader(train_set, batch_size=batch_size, collate_fn=train_set.collate):
            loss = loss_of(model, batch, device)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            if log_every and len(losses) % log_every == 0:
                print(f'step {len(losses)}: loss {losses[-1]:.3f} (chance {math.log(info.codebook_size):.3f})')
            if len(losses) == steps:
                break
        epoch += 1
    validation = None
    if _has_split(dataset, 'validation'):
        model.eval()
        held_out = open_dataset(dataset, 'validation', context_frames=half, target_frames=half,
                                shuffle_shards=False, shuffle_buffer=0)
        with torch.no_grad():
            values = [float(loss_of(model, b, device)) for b in
                      torch.utils.data.DataLoader(held_out, batch_size=batch_size, collate_fn=held_out.collate)]
        validation = sum(values) / len(values) if values else None
        print(f'validation loss {validation:.3f}' if validation is not None else 'validation: no examples')
    return {'losses': losses, 'validation_loss': validation}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', help='a continuation dataset root (local, s3://, gs://)')
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--frames', type=int, default=64, help='context and target frames per example')
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--log-every', type=int, default=10)
    args = parser.parse_args(argv)
    train(args.dataset, args.steps, args.batch_size, args.frames, args.lr, args.device, args.log_every)
    return 0


if __name__ == '__main__':
    sys.exit(main())
