"""verify's checks of a dataset's examples, for every task: the shards of each format the task's
``FormatCheck`` reads (schemas/format_check.py; each format module declares its own) are read
example by example, then: counts against the manifest, every sample decodes, the content is as
the manifest says (codes, audio, rows), the formats hold the same examples, ids are unique, and
no song, artist or donor crosses splits. pipelines/verify.py runs them after the file checks.
"""
from collections import defaultdict
from typing import Callable, Dict

from schemas.format_check import FormatCheck
from schemas.records import artist_key

FORMAT_NAMES = {'webdataset': 'WebDataset', 'parquet': 'Parquet', 'descriptors': 'Parquet'}


def check_counts(scan):
    problems = []
    readers, units = scan.format_check.readers, scan.format_check.units
    for split, stats in sorted(scan.manifest['splits'].items()):
        for fmt in readers:
            shards = stats['shards'].get(fmt, [])
            listed = sum(s['examples'] for s in shards)
            if listed != stats['examples']:
                problems.append(f'{split}: manifest lists {listed} {fmt} examples in shards, {stats["examples"]} in the split')
            for shard in shards:
                found = scan.counted.get(shard['path'])
                if found is not None and found != shard['examples']:
                    problems.append(f'{shard["path"]}: {found} {units[fmt]}, manifest says {shard["examples"]}')
    totals = {s: st['examples'] for s, st in sorted(scan.manifest['splits'].items())}
    return problems, f'examples per split {totals} match the {scan.format_check.counted_line}'


def check_decode(scan):
    return scan.decode_problems, scan.format_check.decode_line


def check_content(scan):
    return scan.content_problems, scan.format_check.content_line(scan.expected)


def check_formats_agree(scan):
    (first, a_found), (second, b_found) = list(scan.examples.items())[:2]
    a_name, b_name = FORMAT_NAMES[first], FORMAT_NAMES[second]
    problems = [f'{k}: only in {a_name}' for k in sorted(set(a_found) - set(b_found))]
    problems += [f'{k}: only in {b_name}' for k in sorted(set(b_found) - set(a_found))]
    for key in sorted(set(a_found) & set(b_found)):
        a, b = a_found[key][0], b_found[key][0]
        if (a.split, a.song_id, a.artist, a.meta) != (b.split, b.song_id, b.artist, b.meta):
            problems.append(f'{key}: metadata differs between {a_name} and {b_name}')
        elif None not in (a.content_sha, b.content_sha) and a.content_sha != b.content_sha:
            problems.append(f'{key}: codes differ between {a_name} and {b_name}')
    return problems, scan.format_check.agree_line


def check_unique_ids(scan):
    problems = [f'{key}: {len(facts)} times in {fmt}' for fmt, found in scan.examples.items()
                for key, facts in sorted(found.items()) if len(facts) > 1]
    return problems, f'{len(next(iter(scan.examples.values())))} example ids, each once'


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


def checks_of(format_check: FormatCheck) -> Dict[str, Callable]:
    """The example checks of a format, in the order they print ('formats agree' with two formats)."""
    checks = {'example counts': check_counts, 'samples decode': check_decode, format_check.content: check_content}
    if len(format_check.readers) > 1:
        checks['formats agree'] = check_formats_agree
    checks.update({'ids unique': check_unique_ids, 'no leakage': check_no_leakage})
    return checks
