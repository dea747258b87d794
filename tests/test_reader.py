"""The streaming reader on the demo dataset: exactly-once splitting, resumption, pairs, collate."""
import glob
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from schemas.webdataset import read_samples
from schemas.reader import (PadCollate, StreamPosition, apply_delay_pattern, describe, open_dataset,
                            undo_delay_pattern)


@pytest.fixture(scope='module')
def demo(demo_dataset):
    return demo_dataset[0]


def _codes(root, split):
    """example id -> (context, target) int16 [codebooks, frames], from the Parquet shards."""
    out = {}
    for path in sorted(glob.glob(f'{root}/parquet/{split}/*.parquet')):
        for row in pq.read_table(path, columns=['example_id', 'context_codes', 'target_codes']).to_pylist():
            out[row['example_id']] = (np.asarray(row['context_codes'], np.int16),
                                      np.asarray(row['target_codes'], np.int16))
    return out


def _ids(dataset, workers, batch_size=3):
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=dataset.collate)
    return [key for batch in loader for key in batch['example_id']]


@pytest.mark.parametrize('split', ['train', 'validation'])
def test_each_sample_once_per_epoch_over_2_ranks_x_2_workers(demo, split):
    expected = set(_codes(demo.output, split))
    shards = len(describe(demo.output, split).urls)
    assert shards == len(demo.manifest['splits'][split]['shards']['webdataset'])
    seen = Counter()
    for rank in (0, 1):
        seen.update(_ids(open_dataset(demo.output, split, rank=rank, world_size=2, seed=7), workers=2))
    assert set(seen) == expected and set(seen.values()) == {1}
    # train has more shards than the 4 slots (whole shards per slot); validation fewer (every 4th sample)
    assert (shards >= 4) == (split == 'train')


def test_each_sample_once_when_slots_outnumber_shards(demo):
    expected = set(_codes(demo.output, 'train'))
    world = len(describe(demo.output, 'train').urls) + 3
    seen = Counter(item['example_id'] for rank in range(world)
                   for item in open_dataset(demo.output, 'train', rank=rank, world_size=world))
    assert set(seen) == expected and set(seen.values()) == {1}


def test_order_is_seeded_per_epoch(demo):
    def order(epoch, seed=0):
        dataset = open_dataset(demo.output, 'train', rank=0, world_size=1, seed=seed)
        dataset.set_epoch(epoch)
        return [item['example_id'] for item in dataset]
    first = order(0)
    assert first == order(0)
    assert sorted(first) == sorted(order(1)) and first != order(1) and first != order(0, seed=1)
    unshuffled = [i['example_id'] for i in open_dataset(demo.output, 'train', rank=0, world_size=1,
                                                        shuffle_shards=False, shuffle_buffer=0)]
    in_shard_order = [s['__key__'] for path in sorted(glob.glob(f'{demo.output}/webdataset/train/*.tar'))
                      for s in read_samples(path)]
    assert unshuffled == in_shard_order != first


def test_resume_from_a_position_reads_exactly_the_rest(demo):
    def loader(**kwargs):
        dataset = open_dataset(demo.output, 'train', rank=0, world_size=1, seed=3, epoch=2, **kwargs)
        return DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=dataset.collate)

    def per_slot(batches):
        out = {}
        for batch in batches:
            for slot, key in zip(batch['slot'].tolist(), batch['example_id']):
                out.setdefault(slot, []).append(key)
        return out
    everything = per_slot(loader())
    position, consumed = StreamPosition(epoch=2), []
    for i, batch in enumerate(loader()):
        if i == 3:
            break
        consumed.append(batch)
        position.advance(batch)
    saved = position.to_dict()
    rest, read = per_slot(loader(resume=saved)), per_slot(consumed)
    # three batches (a worker's last batch may be short): some read, some left, both workers seen
    total = sum(map(len, everything.values()))
    assert sum(map(len, read.values())) == sum(len(b['example_id']) for b in consumed)
    assert 0 < sum(map(len, read.values())) < total and set(read) == set(everything) == {0, 1}
    for slot, keys in everything.items():    # each worker goes on where it stopped, in the same order
        assert read.get(slot, []) + rest.get(slot, []) == keys
    with pytest.raises(ValueError, match='same world size'):
        next(iter(open_dataset(demo.output, 'train', rank=0, world_size=3, seed=3, resume=saved)))


def test_continuation_target_starts_where_the_context_ends(demo):
    codes = _codes(demo.output, 'train')
    dataset = open_dataset(demo.output, 'train', rank=0, world_size=1, context_frames=300, target_frames=150)
    cuts = set()
    for item in dataset:
        context, target = codes[item['example_id']]
        cut = item['cut_frame']
        assert item['context'].dtype == torch.int64 and tuple(item['context'].shape) == (4, 300)
        assert tuple(item['target'].shape) == (4, 150) and 300 <= cut <= 512 - 150
        assert np.array_equal(item['context'].numpy(), context[:, cut - 300:cut])
        assert np.array_equal(item['target'].numpy(), target[:, cut:cut + 150])
        cuts.add(cut)
    assert len(cuts) > 1   # cut points are drawn per example


def test_stemming_pairs_are_aligned(demo):
    codes = _codes(demo.output, 'test')
    for item in open_dataset(demo.output, 'test', mode='stemming', context_frames=128, rank=0, world_size=1):
        context, target = codes[item['example_id']]
        cut = item['cut_frame']
        assert np.array_equal(item['context'].numpy(), context[:, cut:cut + 128])
        assert np.array_equal(item['target'].numpy(), target[:, cut:cut + 128])


def test_defaults_split_the_window_and_bad_lengths_are_refused(demo):
    item = next(iter(open_dataset(demo.output, 'test', rank=0, world_size=1)))
    assert item['context'].shape[-1] + item['target'].shape[-1] == 512
    with pytest.raises(ValueError, match='512'):
        open_dataset(demo.output, 'train', context_frames=400, target_frames=200)
    with pytest.raises(ValueError, match="split 'dev'"):
        open_dataset(demo.output, 'dev')
    with pytest.raises(ValueError, match='mode'):
        open_dataset(demo.output, mode='separation')


def test_shard_urls_stream_without_a_manifest(demo):
    urls = sorted(glob.glob(f'{demo.output}/webdataset/validation/*.tar'))
    keys = {i['example_id'] for i in open_dataset(urls, rank=0, world_size=1)}
    keys_pipe = {i['example_id'] for i in open_dataset([f'pipe:cat {u}' for u in urls], rank=0, world_size=1)}
    assert keys == keys_pipe == set(_codes(demo.output, 'validation'))


def test_collate_pads_with_the_pad_id_and_returns_masks(demo):
    items = [{'context': torch.arange(8).reshape(2, 4), 'target': torch.ones(2, 2, dtype=torch.int64)},
             {'context': torch.arange(4).reshape(2, 2), 'target': torch.ones(2, 3, dtype=torch.int64)}]
    batch = PadCollate(pad_id=2048)(items)
    assert tuple(batch['context'].shape) == (2, 2, 4) and tuple(batch['target'].shape) == (2, 2, 3)
    assert batch['context_mask'].tolist() == [[True] * 4, [True, True, False, False]]
    assert batch['target_mask'].tolist() == [[True, True, False], [True] * 3]
    assert (batch['context'][1, :, 2:] == 2048).all() and (batch['target'][0, :, 2] == 2048).all()
    assert torch.equal(batch['context'][1, :, :2], items[1]['context'])
    assert open_dataset(demo.output, 'test').collate.pad_id == demo.manifest['codec']['codebook_size']


def test_delay_pattern_shifts_codebook_k_by_k_frames():
    size = 2048
    codes = torch.randint(0, size, (3, 4, 10))
    delayed = apply_delay_pattern(codes, pad_id=size)
    assert tuple(delayed.shape) == (3, 4, 13)
    for k in range(4):
        assert torch.equal(delayed[:, k, k:k + 10], codes[:, k])
        assert (delayed[:, k, :k] == size).all() and (delayed[:, k, k + 10:] == size).all()
    assert (codes < size).all() and int((delayed == size).sum()) == 3 * 4 * 3   # pads only where no code
    assert torch.equal(undo_delay_pattern(delayed), codes)
    as_numpy = apply_delay_pattern(codes.numpy(), pad_id=size)
    assert np.array_equal(as_numpy, delayed.numpy()) and np.array_equal(undo_delay_pattern(as_numpy), codes.numpy())


def test_the_reader_goes_by_the_manifests_window_geometry_not_the_options(demo, tmp_path):
    import json
    import os
    manifest = json.load(open(os.path.join(demo.output, 'manifest.json')))
    windows, codec = manifest['windows'], manifest['codec']
    assert windows['frames'] == 512 and windows['chunk_samples'] == 512 * windows['sample_rate_hz'] // 50
    assert windows['hop_samples'] == windows['chunk_samples'] and windows['margin_samples'] % 640 == 0
    assert (codec['weights_kind'], codec['weights_seed'], codec['weights_path']) == ('random', 0, None)
    copy = tmp_path / 'copy'
    os.makedirs(copy)
    os.symlink(os.path.join(demo.output, 'webdataset'), copy / 'webdataset')
    manifest['options'] = {'chunk_seconds': 1.0}          # a flag dump the reader must not read
    (copy / 'manifest.json').write_text(json.dumps(manifest))
    assert describe(str(copy), 'test').frames == 512
    del manifest['windows']
    (copy / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match='records no "windows" geometry'):
        describe(str(copy), 'test')
