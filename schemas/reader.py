"""Streaming reader for trainers: a split's WebDataset shards as a PyTorch ``IterableDataset``.

``open_dataset(root, split='train')`` lists the split's shards from the manifest (or takes
shard URLs as given), and streams them with the ``webdataset`` library: tar parsing and
``pipe:``/``http(s)://`` opening (``s3://`` and ``gs://`` through Beam's FileSystems), a
seeded shard shuffle per epoch, a sample shuffle buffer, and a split of the work over
distributed ranks and DataLoader workers in which every sample is read by exactly one
``(rank, worker)`` slot per epoch: whole shards when there are at least as many shards as
slots, every n-th sample of every shard otherwise.

Every random choice (shard order, shuffle buffer, continuation cut points) is seeded from
``seed``, the epoch and the slot or example id, so a slot's stream is a function of them:
items carry their ``slot`` and ``index`` in it, a ``StreamPosition`` records what a trainer
consumed, and ``open_dataset(..., resume=position)`` skips exactly that.

Items are dicts: ``context`` and ``target`` int64 ``[codebooks, frames]`` tensors,
``cut_frame`` (the frame of the example's window where the target starts; the context ends
there in ``continuation`` mode and starts there in ``stemming`` mode), ``example_id``,
``meta`` (the sample's json), ``slot`` and ``index``. ``PadCollate`` batches them with masks;
``apply_delay_pattern`` lays codes out as MusicGen's decoder reads them (both in
``schemas/collate.py``, importable from here).
"""
import hashlib
import json
import os
import random
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, Optional, Union

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from schemas.collate import PadCollate, apply_delay_pattern, cut_pair, undo_delay_pattern  # noqa: F401 (the trainer's API)
from schemas.manifest import MANIFEST_NAME, read_manifest, window_frames
from schemas.continuation import decode_sample
from schemas.webdataset import open_shards, tar_samples

TASKS = ('continuation',)
MODES = ('continuation', 'stemming')


def _webdataset():
    import webdataset
    return webdataset


def stable_seed(*parts) -> int:
    """A 63-bit seed from ``parts`` that every process agrees on (unlike ``hash()``)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') >> 1


@dataclass(frozen=True)
class DatasetInfo:
    """What the reader knows of a split before reading a sample."""
    urls: tuple
    codebooks: Optional[int] = None
    codebook_size: Optional[int] = None
    frames: Optional[int] = None            # frames per example window
    examples: Optional[int] = None


def _is_shard_spec(url_or_path) -> bool:
    if not isinstance(url_or_path, str):
        return True
    return url_or_path.startswith('pipe:') or url_or_path.endswith('.tar') or '{' in url_or_path


def _read_manifest_any(root: str) -> dict:
    if root.startswith(('http://', 'https://')):
        with urllib.request.urlopen(f'{root.rstrip("/")}/{MANIFEST_NAME}') as response:
            return json.loads(response.read().decode('utf-8'))
    return read_manifest(root)


def _shard_url(root: str, relative: str) -> str:
    if '://' in root:
        return f'{root.rstrip("/")}/{relative}'
    return os.path.join(root, *relative.split('/'))


def describe(url_or_path, split: str = 'train') -> DatasetInfo:
    """The shard URLs of ``split`` and the geometry recorded in the manifest.

    Args:
        url_or_path: a dataset root (local, ``s3://``, ``gs://``, ``http(s)://``) or shard URLs: a
            list, a ``.tar`` URL, a brace pattern, or a ``pipe:`` command (geometry then unknown).
        split: the split to read.
    """
    if _is_shard_spec(url_or_path):
        import braceexpand
        specs = [url_or_path] if isinstance(url_or_path, str) else list(url_or_path)
        urls = tuple(u for spec in specs for u in braceexpand.braceexpand(spec))
        if not urls:
            raise ValueError('no shard URLs given')
        return DatasetInfo(urls=urls)
    manifest = _read_manifest_any(url_or_path)
    if split not in manifest['splits']:
        raise ValueError(f'split {split!r} is not in {url_or_path}: it has {sorted(manifest["splits"])}')
    stats = manifest['splits'][split]
    codec = manifest['codec']
    urls = tuple(_shard_url(url_or_path, s['path']) for s in stats['shards'].get('webdataset', []))
    return DatasetInfo(urls=urls, codebooks=codec['codebooks'], codebook_size=codec['codebook_size'],
                       frames=window_frames(manifest, url_or_path), examples=stats['examples'])



@dataclass
class StreamPosition:
    """How far a trainer got in an epoch: samples consumed per ``(rank, worker)`` slot.

    Update it with every batch the trainer has used (``advance``), save ``to_dict()`` with the
    checkpoint, and pass it back as ``open_dataset(..., resume=StreamPosition.from_dict(d))``
    with the same seed, world size and DataLoader worker count.
    """
    epoch: int = 0
    slots: Optional[int] = None
    consumed: Dict[int, int] = field(default_factory=dict)

    def advance(self, batch) -> 'StreamPosition':
        """Records a consumed item or collated batch (anything with ``slot``/``index``)."""
        slots, indices = batch['slot'], batch['index']
        slots = [int(s) for s in (slots.reshape(-1).tolist() if hasattr(slots, 'reshape') else
                                  (slots if isinstance(slots, (list, tuple)) else [slots]))]
        indices = [int(i) for i in (indices.reshape(-1).tolist() if hasattr(indices, 'reshape') else
                                    (indices if isinstance(indices, (list, tuple)) else [indices]))]
        for slot, index in zip(slots, indices):
            self.consumed[slot] = max(self.consumed.get(slot, 0), index + 1)
        if 'slots' in batch:
            total = batch['slots']
            self.slots = int(total.reshape(-1)[0] if hasattr(total, 'reshape') else
                             (total[0] if isinstance(total, (list, tuple)) else total))
        return self

    def to_dict(self) -> dict:
        return {'epoch': self.epoch, 'slots': self.slots,
                'consumed': {str(k): v for k, v in sorted(self.consumed.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> 'StreamPosition':
        return cls(epoch=int(data['epoch']), slots=data.get('slots'),
                   consumed={int(k): int(v) for k, v in data.get('consumed', {}).items()})


def _slot(rank, world_size):
    """(slot, slots) of this process and DataLoader worker."""
    if rank is None or world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world_size = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    worker = get_worker_info()
    worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    return rank * workers + worker_id, world_size * workers


def _shard_dicts(urls):
    return lambda: iter([{'url': url} for url in urls])


def _every_nth(samples, slot: int, slots: int):
    for i, sample in enumerate(samples):
        if i % slots == slot:
            yield sample


class StemDataset(IterableDataset):
    """An ``IterableDataset`` of training pairs over WebDataset shards (made by ``open_dataset``)."""

    def __init__(self, info: DatasetInfo, mode: str, context_frames, target_frames, shuffle_shards: bool,
                 shuffle_buffer: int, seed: int, epoch: int, rank, world_size, resume: Optional[StreamPosition]):
        super().__init__()
        self.info = info
        self.mode = mode
        self.context_frames = context_frames
        self.target_frames = target_frames
        self.shuffle_shards = shuffle_shards
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.epoch = epoch
        self.rank, self.world_size = rank, world_size
        self.resume = resume
        if resume is not None:
            self.epoch = resume.epoch

    @property
    def codebook_size(self) -> Optional[int]:
        return self.info.codebook_size

    def set_epoch(self, epoch: int) -> None:
        """Reshuffles for ``epoch``; call before iterating (before the DataLoader forks)."""
        self.epoch = epoch

    def shards_of(self, slot: int, slots: int):
        """(shard URLs this slot reads, whether it keeps every ``slots``-th sample of them)."""
        urls = list(self.info.urls)
        if self.shuffle_shards:
            random.Random(stable_seed(self.seed, self.epoch, 'shards')).shuffle(urls)
        if len(urls) >= slots:
            return urls[slot::slots], False
        return urls, slots > 1

    def _skip(self, slot: int, slots: int) -> int:
        if self.resume is None or self.resume.epoch != self.epoch:
            return 0
        if self.resume.slots is not None and self.resume.slots != slots:
            raise ValueError(f'the position was saved with {self.resume.slots} rank x worker slots, '
                             f'this run has {slots}: resume with the same world size and worker count')
        return self.resume.consumed.get(slot, 0)

    def pipeline(self, slot: int, slots: int):
        """The webdataset pipeline of one slot's samples (raw tar members, shuffled)."""
        wds = _webdataset()
        urls, sample_split = self.shards_of(slot, slots)
        stages = [_shard_dicts(urls), wds.filters.pipelinefilter(open_shards)(),
                  wds.filters.pipelinefilter(tar_samples)()]
        if sample_split:
            stages.append(wds.filters.pipelinefilter(_every_nth)(slot, slots))
        if self.shuffle_buffer > 1:
            rng = random.Random(stable_seed(self.seed, self.epoch, 'samples', slot, slots))
            stages.append(wds.shuffle(self.shuffle_buffer, min(100, self.shuffle_buffer), rng=rng))
        return wds.DataPipeline(*stages)

    def make_item(self, raw: dict, slot: int, slots: int, index: int) -> dict:
        sample = decode_sample(raw)
        context, target = sample['context'], sample['target']
        frames = context.shape[-1]
        c = self.context_frames or (frames // 2 if self.mode == 'continuation' else frames)
        t = self.target_frames or (frames - c if self.mode == 'continuation' else c)
        if (c + t if self.mode == 'continuation' else c) > frames:
            raise ValueError(f'{raw["__key__"]}: {frames} frames per example, too few for '
                             f'context_frames={c}' + (f' + target_frames={t}' if self.mode == 'continuation' else ''))
        rng = random.Random(stable_seed(self.seed, self.epoch, 'cut', raw['__key__']))
        context, target, cut = cut_pair(context, target, self.mode, c, t, rng)
        return {'example_id': raw['__key__'],
                'context': torch.from_numpy(context.astype(np.int64)),
                'target': torch.from_numpy(target.astype(np.int64)),
                'cut_frame': cut, 'meta': sample['json'],
                'slot': slot, 'slots': slots, 'index': index}

    def __iter__(self):
        slot, slots = _slot(self.rank, self.world_size)
        skip = self._skip(slot, slots)
        for index, raw in enumerate(self.pipeline(slot, slots)):
            if index >= skip:
                yield self.make_item(raw, slot, slots, index)


def open_dataset(url_or_path, split: str = 'train', task: str = 'continuation', mode: str = 'continuation',
                 context_frames: Optional[int] = None, target_frames: Optional[int] = None,
                 shuffle_shards: bool = True, shuffle_buffer: int = 1000, seed: int = 0, epoch: int = 0,
                 rank: Optional[int] = None, world_size: Optional[int] = None,
                 resume: Optional[Union[StreamPosition, dict]] = None):
    """Streams a split as a PyTorch ``IterableDataset`` of training pairs.

    Args:
        url_or_path: dataset root (local, ``s3://``, ``gs://``, ``http(s)://``), or shard URLs (list,
            ``.tar`` URL, brace pattern, ``pipe:`` command).
        split: ``train``, ``validation`` or ``test``.
        task: what the dataset was built for; ``continuation``.
        mode: ``continuation`` (context up to a cut, target after it) or ``stemming`` (aligned).
        context_frames: context length; default half the window (``continuation``) or all of it.
        target_frames: target length in ``continuation`` mode; default the rest of the window.
        shuffle_shards: shuffle the shard order each epoch.
        shuffle_buffer: sample shuffle buffer size per slot; 0 or 1 keeps the shard order.
        seed: seed of every random choice.
        epoch: the epoch to read (``set_epoch`` changes it).
        rank, world_size: distributed position; default from ``torch.distributed`` or
            ``RANK``/``WORLD_SIZE``.
        resume: a ``StreamPosition`` (or its dict) to continue from.

    Returns:
        a ``torch.utils.data.IterableDataset``; ``.collate`` is a ``PadCollate`` padding with
        the codebook size.
    """
    if task not in TASKS:
        raise ValueError(f'task={task!r}: choose one of {TASKS}')
    if mode not in MODES:
        raise ValueError(f'mode={mode!r}: choose one of {MODES}')
    for name, value in (('context_frames', context_frames), ('target_frames', target_frames)):
        if value is not None and value < 1:
            raise ValueError(f'{name} must be at least 1, got {value}')
    if shuffle_buffer < 0:
        raise ValueError(f'shuffle_buffer must be >= 0, got {shuffle_buffer}')
    info = describe(url_or_path, split)
    if info.frames is not None:
        c = context_frames or (info.frames // 2 if mode == 'continuation' else info.frames)
        needed = c + (target_frames or 0) if mode == 'continuation' else c
        if needed > info.frames or (mode == 'continuation' and c >= info.frames):
            raise ValueError(f'context_frames={context_frames} and target_frames={target_frames} need '
                             f'{needed} frames; examples of this dataset have {info.frames}')
    if isinstance(resume, dict):
        resume = StreamPosition.from_dict(resume)
    dataset = StemDataset(info, mode, context_frames, target_frames, shuffle_shards,
                                        shuffle_buffer, seed, epoch, rank, world_size, resume)
    dataset.collate = PadCollate(info.codebook_size if info.codebook_size is not None else 0)
    return dataset
