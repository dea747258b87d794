"""Codes for a trainer: ``cut_pair`` (one training pair from an example's aligned codes),
``PadCollate`` (padding and masks) and MusicGen's delay pattern."""
import random
from typing import List, Sequence

import numpy as np
import torch


class PadCollate:
    """Batches items of different lengths: codes padded with ``pad_id`` to ``[batch, codebooks,
    max_frames]``, boolean masks ``[batch, max_frames]`` (True on real frames)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def pad(self, tensors: Sequence):
        length = max(t.shape[-1] for t in tensors)
        out = torch.full((len(tensors), tensors[0].shape[0], length), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(tensors), length), dtype=torch.bool)
        for i, t in enumerate(tensors):
            out[i, :, :t.shape[-1]] = t
            mask[i, :t.shape[-1]] = True
        return out, mask

    def __call__(self, items: List[dict]) -> dict:
        if not items:
            raise ValueError('cannot collate an empty batch')
        context, context_mask = self.pad([i['context'] for i in items])
        target, target_mask = self.pad([i['target'] for i in items])
        batch = {'context': context, 'context_mask': context_mask, 'target': target, 'target_mask': target_mask,
                 'example_id': [i.get('example_id') for i in items], 'meta': [i.get('meta') for i in items]}
        for key in ('cut_frame', 'slot', 'slots', 'index'):
            if all(key in i for i in items):
                batch[key] = torch.tensor([i[key] for i in items], dtype=torch.int64)
        return batch


def apply_delay_pattern(codes, pad_id: int):
    """MusicGen's delay pattern: codebook ``k`` shifted right by ``k`` frames.

    Args:
        codes: ``[..., codebooks, frames]`` tensor or array.
        pad_id: the id of positions with no code; ``codebook_size`` (never a real code).

    Returns:
        ``[..., codebooks, frames + codebooks - 1]`` of the same kind, ``pad_id`` where empty.
    """
    k, frames = codes.shape[-2], codes.shape[-1]
    is_numpy = isinstance(codes, np.ndarray)
    shape = tuple(codes.shape[:-1]) + (frames + k - 1,)
    out = np.full(shape, pad_id, dtype=codes.dtype) if is_numpy else torch.full(shape, pad_id, dtype=codes.dtype)
    for q in range(k):
        out[..., q, q:q + frames] = codes[..., q, :]
    return out


def undo_delay_pattern(delayed):
    """Inverse of ``apply_delay_pattern``: ``[..., codebooks, frames + codebooks - 1]`` -> ``[..., codebooks,
    frames]``."""
    k = delayed.shape[-2]
    frames = delayed.shape[-1] - (k - 1)
    if frames < 0:
        raise ValueError(f'{delayed.shape[-1]} steps are too few for {k} delayed codebooks')
    rows = [delayed[..., q:q + 1, q:q + frames] for q in range(k)]
    return np.concatenate(rows, axis=-2) if isinstance(delayed, np.ndarray) else torch.cat(rows, dim=-2)


def cut_pair(context: np.ndarray, target: np.ndarray, mode: str, context_frames: int, target_frames: int,
             rng: random.Random):
    """Cuts one training pair from an example's aligned codes; returns (context, target, cut_frame).

    ``continuation``: ``context_frames`` of context ending at the cut, the next ``target_frames`` of
    target. ``stemming``: ``context_frames`` of each, both starting at the cut.
    """
    frames = context.shape[-1]
    if mode == 'continuation':
        cut = rng.randint(context_frames, frames - target_frames)
        return context[:, cut - context_frames:cut], target[:, cut:cut + target_frames], cut
    cut = rng.randint(0, frames - context_frames)
    return context[:, cut:cut + context_frames], target[:, cut:cut + context_frames], cut
