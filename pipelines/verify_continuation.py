"""verify's checks of a continuation dataset's examples: both formats read (every sample and row
decoded, codes checked against the manifest's codec and window geometry), then counts, formats
agreeing, unique ids and no split leakage. pipelines/verify.py runs them after the file checks.
"""
import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np
import pyarrow.parquet as pq

from schemas.records import artist_key
from schemas.webdataset import npy_load, tar_samples

CODE_FIELDS = ('context', 'target')


@dataclass
class ExampleFacts:
    """What the checks need of one example, from one format."""
    shard_split: str     # the split whose shard holds it
    split: str           # the split its metadata names
    song_id: str
    artist: str
    codes_sha: str
    donor_song_ids: tuple = ()
    donor_splits: tuple = ()


def _codes_problem(codes: np.ndarray, codec: dict, frames: int) -> str:
    expected = (codec['codebooks'], frames)
    if codes.dtype != np.int16:
        return f'dtype {codes.dtype}, expected int16'
    if codes.shape != expected:
        return f'shape {codes.shape}, expected {expected}'
    if codes.size and (codes.min() < 0 or codes.max() >= codec['codebook_size']):
        return f'codes in [{codes.min()}, {codes.max()}], outside [0, {codec["codebook_size"]})'
    return ''


def _codes_sha(arrays) -> str:
    sha = hashlib.sha256()
    for codes in arrays:
        sha.update(np.ascontiguousarray(codes, dtype=np.int16).tobytes())
    return sha.hexdigest()


def read_webdataset(scan, path: str, data: bytes, split: str) -> int:
    import soundfile
    count = 0
    for sample in tar_samples([{'url': path, 'stream': io.BytesIO(data)}]):
        count += 1
        key = sample['__key__']
        try:
            meta = json.loads(sample['json'])
            codes = [npy_load(sample[f'{name}.npy']) for name in CODE_FIELDS]
            for name in CODE_FIELDS:
                if f'{name}.flac' in sample:
                    soundfile.read(io.BytesIO(sample[f'{name}.flac']))
        except Exception as e:   # any undecodable member is this check's finding
            scan.decode_problems.append(f'{path}: {key}: {type(e).__name__}: {e}')
            continue
        for name, array in zip(CODE_FIELDS, codes):
            problem = _codes_problem(array, scan.manifest['codec'], scan.frames)
            if problem:
                scan.code_problems.append(f'{path}: {key} {name}: {problem}')
        scan.examples['webdataset'][key].append(
            ExampleFacts(split, meta.get('split'), meta.get('song_id'), meta.get('artist'), _codes_sha(codes),
                         tuple(meta.get('donor_song_ids') or ()), tuple(meta.get('donor_splits') or ())))
    return count


def _parquet_codes(column) -> list:
    """A list<list<int>> column -> one ``[rows, frames]`` array per cell (None where ragged or empty)."""
    outer = column.combine_chunks()
    outer_offsets = outer.offsets.to_numpy()
    inner = outer.flatten()
    inner_offsets = inner.offsets.to_numpy()
    flat = inner.flatten().to_numpy(zero_copy_only=False)
    out = []
    for i in range(len(outer)):
        a, b = outer_offsets[i], outer_offsets[i + 1]
        lengths = np.diff(inner_offsets[a:b + 1])
        if b == a or len(set(lengths.tolist())) != 1:
            out.append(None)
        else:
            out.append(flat[inner_offsets[a]:inner_offsets[b]].reshape(b - a, -1))
    return out


def read_parquet(scan, path: str, data: bytes, split: str) -> int:
    table = pq.read_table(io.BytesIO(data))
    columns = {name: table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
               for name in ('example_id', 'split', 'song_id', 'artist', 'donor_song_ids', 'donor_splits')}
    codes = {name: _parquet_codes(table.column(f'{name}_codes')) for name in CODE_FIELDS}
    for i, key in enumerate(columns['example_id']):
        for name in CODE_FIELDS:
            array = codes[name][i]
            problem = ('ragged or empty code lists' if array is None
                       else _codes_problem(array, scan.manifest['codec'], scan.frames))
            if problem:
                scan.code_problems.append(f'{path}: {key} {name}: {problem}')
        arrays = [codes[name][i] if codes[name][i] is not None else np.zeros(0, np.int16) for name in CODE_FIELDS]
        scan.examples['parquet'][key].append(ExampleFacts(
            split, columns['split'][i], columns['song_id'][i], columns['artist'][i], _codes_sha(arrays),
            tuple(columns['donor_song_ids'][i] or ()), tuple(columns['donor_splits'][i] or ())))
    return table.num_rows


READERS = {'webdataset': read_webdataset, 'parquet': read_parquet}


def check_counts(scan):
    problems = []
    for split, stats in sorted(scan.manifest['splits'].items()):
        for fmt in READERS:
            shards = stats['shards'].get(fmt, [])
            listed = sum(s['examples'] for s in shards)
            if listed != stats['examples']:
                problems.append(f'{split}: manifest lists {listed} {fmt} examples in shards, {stats["examples"]} in the split')
            for shard in shards:
                found = scan.counted.get(shard['path'])
                if found is not None and found != shard['examples']:
                    unit = 'rows' if fmt == 'parquet' else 'samples'
                    problems.append(f'{shard["path"]}: {found} {unit}, manifest says {shard["examples"]}')
    totals = {s: st['examples'] for s, st in sorted(scan.manifest['splits'].items())}
    return problems, f'examples per split {totals} match the tar samples and Parquet rows'


def check_decode(scan):
    return scan.decode_problems, 'every sample decodes (npy without pickle, json, FLAC)'


def check_codes(scan):
    codec = scan.manifest['codec']
    return scan.code_problems, (f'codes int16 [{codec["codebooks"]}, {scan.frames}] in [0, {codec["codebook_size"]})')


def check_formats_agree(scan):
    wds, parquet = scan.examples['webdataset'], scan.examples['parquet']
    problems = [f'{k}: only in WebDataset' for k in sorted(set(wds) - set(parquet))]
    problems += [f'{k}: only in Parquet' for k in sorted(set(parquet) - set(wds))]
    for key in sorted(set(wds) & set(parquet)):
        a, b = wds[key][0], parquet[key][0]
        if (a.split, a.song_id, a.artist) != (b.split, b.song_id, b.artist):
            problems.append(f'{key}: metadata differs between WebDataset and Parquet')
        elif a.codes_sha != b.codes_sha:
            problems.append(f'{key}: codes differ between WebDataset and Parquet')
    return problems, 'WebDataset and Parquet hold the same examples and codes'


def check_unique_ids(scan):
    problems = [f'{key}: {len(facts)} times in {fmt}' for fmt, found in scan.examples.items()
                for key, facts in sorted(found.items()) if len(facts) > 1]
    return problems, f'{len(scan.examples["webdataset"])} example ids, each once'


def check_no_leakage(scan):
    """No song or artist (by its normalised name) in two splits; every reserve donor from the
    example's own split and never a song the dataset holds."""
    problems = []
    facts = [f for found in scan.examples.values() for found_facts in found.values() for f in found_facts]
    for label, key_of in (('song', lambda f: f.song_id), ('artist', lambda f: f.artist and artist_key(f.artist))):
        splits = defaultdict(set)
        for f in facts:
            if key_of(f):
                splits[key_of(f)].add(f.shard_split)
        problems += [f'{label} {value!r} in {len(s)} splits: {sorted(s)}' for value, s in sorted(splits.items())
                     if len(s) > 1]
    songs = {f.song_id for f in facts}
    donors = {(d, s, f.shard_split) for f in facts for d, s in zip(f.donor_song_ids, f.donor_splits)}
    problems += [f'donor song {d!r} of {s} fills a {split} example' for d, s, split in sorted(donors) if s != split]
    problems += [f'donor song {d!r} is also in the dataset' for d in sorted({d for d, _, _ in donors} & songs)]
    for fmt, found in scan.examples.items():
        problems += [f'{key} in {fmt} {f.shard_split}/ says split {f.split!r}' for key, facts in sorted(found.items())
                     for f in facts if f.split != f.shard_split]
    return problems, 'no song, artist or donor in two splits'


CHECKS: Dict[str, Callable] = {
    'example counts': check_counts,
    'samples decode': check_decode,
    'codes valid': check_codes,
    'formats agree': check_formats_agree,
    'ids unique': check_unique_ids,
    'no leakage': check_no_leakage,
}
