"""Check a built dataset: ``python -m pipelines.verify <dataset> [--decode N]``.

Reads the manifest and every shard once (local, ``s3://`` or ``gs://`` through Beam's
FileSystems) and runs each check on what it found. Every dataset's files: listed shards exist
with the recorded bytes and sha256, no unlisted shards, and every exported file the manifest
lists (audiocraft files, track folders, CSVs, concept folders, the descriptor index) exists with
its bytes and sha256. Then its examples, read by the format of the manifest's task (each format
module's ``CHECK``, schemas/format_check.py; the checks are pipelines/verify_examples.py):
counts per split agree between the manifest and the shards, every sample decodes, the content
is as the manifest says (continuation and concept: int16 codes in ``[0, codebook_size)``
shaped by the manifest's geometry; separation: the audio's rate, channels and length, the
mixture = the sum of the targets; descriptors: every block's frames and numbers), the formats
hold the same examples, ids are unique, and no song, artist or donor is in two splits.
``--decode N`` turns N random continuation examples' codes back into WAVs with the codec the
manifest names. Prints one PASS/FAIL line per check and a total; exits 1 on
any failure.
"""
import argparse
import hashlib
import logging
import os
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from apache_beam.io.filesystems import FileSystems

from pipelines.flags import parse_tool_args
from pipelines.progress import HashProgress
from pipelines.verify_examples import checks_of
from schemas import continuation
from schemas.format_check import ExampleFacts, FormatCheck
from schemas.manifest import MANIFEST_NAME, read_manifest
from schemas.shards import SHARD_PATTERNS, join
from schemas.windows import split_pending
from transforms.tasks.registry import TASKS

MAX_LISTED = 5


@dataclass
class Scan:
    """Everything read from a dataset, reduced to what the checks need."""
    root: str
    manifest: dict
    format_check: FormatCheck                                      # the task's format (its CHECK)
    expected: dict                                                 # what the examples' content should be
    task: str = 'continuation'
    exports: int = 0                                               # exported files listed
    export_problems: List[str] = field(default_factory=list)       # missing, or bytes or sha256 differ
    missing: List[str] = field(default_factory=list)               # listed, not found
    mismatched: List[str] = field(default_factory=list)            # bytes or sha256 differ
    unlisted: List[str] = field(default_factory=list)
    pending: List[str] = field(default_factory=list)               # of a window still being written
    counted: Dict[str, int] = field(default_factory=dict)          # shard path -> examples found
    decode_problems: List[str] = field(default_factory=list)
    content_problems: List[str] = field(default_factory=list)
    examples: Dict[str, Dict[str, List[ExampleFacts]]] = field(default_factory=dict)   # format -> id -> facts


def _listed_shards(manifest: dict):
    """(split, format, shard dict) of every shard the manifest lists."""
    for split, stats in sorted(manifest['splits'].items()):
        for fmt, shards in sorted(stats['shards'].items()):
            for shard in shards:
                yield split, fmt, shard


def _files_under(root: str, folder: str) -> List[str]:
    """Paths relative to ``root`` of every file under ``root/folder``."""
    prefix = join(root, folder)
    found = FileSystems.match([prefix.rstrip('/') + '/**'])[0].metadata_list
    base = root.rstrip('/') + '/'
    return sorted(m.path[len(base):].replace(os.sep, '/') if m.path.startswith(base) else m.path for m in found)


def _mismatch(entry: dict, size: int, sha: str):
    """A problem when a listed file's size or sha256 differ from the manifest's (None when they
    agree, or when the manifest lists the file without them)."""
    if entry['sha256'] and (size, sha) != (entry['bytes'], entry['sha256']):
        return (f'{entry["path"]}: {size} bytes sha256 {sha[:12]}..., manifest says '
                f'{entry["bytes"]} bytes sha256 {entry["sha256"][:12]}...')
    return None


def _read_listed(root: str, entry: dict):
    """(bytes of a listed shard, or None when missing; its mismatch with the manifest)."""
    path = join(root, entry['path'])
    if not FileSystems.exists(path):
        return None, None
    with FileSystems.open(path, compression_type='uncompressed') as handle:
        data = handle.read()
    return data, _mismatch(entry, len(data), hashlib.sha256(data).hexdigest())


def _export_problem(root: str, entry: dict):
    """An exported file missing or differing from the manifest, hashed in blocks (a track's WAV
    is never held whole)."""
    path = join(root, entry['path'])
    if not FileSystems.exists(path):
        return f'missing: {entry["path"]}'
    digest, size = hashlib.sha256(), 0
    with FileSystems.open(path, compression_type='uncompressed') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
            size += len(block)
    return _mismatch(entry, size, digest.hexdigest())


def _listed_files(manifest: dict) -> tuple:
    """(files, bytes) the manifest lists: what a scan reads."""
    entries = [shard for _, _, shard in _listed_shards(manifest)]
    entries += [e for export in manifest.get('exports', {}).values() for e in export['paths']]
    return len(entries), sum(int(e.get('bytes') or 0) for e in entries)


def scan_dataset(root: str, show_progress: bool = False) -> Scan:
    """Reads the manifest and every listed shard and exported file once; records what the checks
    need. The shards of a continuation dataset are also read example by example. With
    ``show_progress``, stderr shows the files and bytes read."""
    manifest = read_manifest(root)
    meter = HashProgress(*_listed_files(manifest)) if show_progress else None
    try:
        return _scan(root, manifest, meter)
    finally:
        if meter is not None:
            meter.close()


def _scan(root: str, manifest: dict, meter) -> Scan:
    task = manifest.get('task', 'continuation')
    if task not in TASKS:
        raise ValueError(f'{root}: the manifest names task {task!r}; this version knows {list(TASKS)}')
    check = TASKS[task].CHECK
    scan = Scan(root=root, manifest=manifest, format_check=check, expected=check.expected(manifest, root), task=task,
                examples={fmt: defaultdict(list) for fmt in check.readers})
    readers = check.readers
    listed, formats = set(), set(readers)
    for split, fmt, shard in _listed_shards(manifest):
        listed.add(shard['path'])
        formats.add(fmt)
        data, problem = _read_listed(root, shard)
        if meter is not None:
            meter.update(int(shard.get('bytes') or 0))
        if data is None:
            scan.missing.append(shard['path'])
            continue
        scan.mismatched += [problem] if problem else []
        if fmt not in readers:
            continue
        try:
            findings = readers[fmt](data, shard['path'], split, scan.expected)
        except Exception as e:   # an unreadable shard is a finding, not a crash
            scan.decode_problems.append(f'{shard["path"]}: {type(e).__name__}: {e}')
            continue
        scan.counted[shard['path']] = findings.count
        scan.decode_problems += findings.decode_problems
        scan.content_problems += findings.content_problems
        for key, facts in findings.examples:
            scan.examples[fmt][key].append(facts)
    for fmt in sorted(formats):
        folder = SHARD_PATTERNS[fmt].split('/')[0] if fmt in SHARD_PATTERNS else fmt
        scan.unlisted += [p for p in _files_under(root, folder) if p not in listed]
    scan.unlisted, scan.pending = split_pending(manifest, scan.unlisted)
    for export in manifest.get('exports', {}).values():
        for entry in export['paths']:
            scan.exports += 1
            problem = _export_problem(root, entry)
            if meter is not None:
                meter.update(int(entry.get('bytes') or 0))
            scan.export_problems += [problem] if problem else []
    return scan


def _listing(problems: List[str]) -> str:
    more = f' (and {len(problems) - MAX_LISTED} more)' if len(problems) > MAX_LISTED else ''
    return '; '.join(problems[:MAX_LISTED]) + more


def check_shards_exist(scan: Scan):
    total = sum(1 for _ in _listed_shards(scan.manifest))
    return [f'missing shard: {p}' for p in scan.missing], f'{total} listed shards found'


def check_shards_intact(scan: Scan):
    return scan.mismatched, 'bytes and sha256 match the manifest'


def check_no_unlisted(scan: Scan):
    pending = f' ({len(scan.pending)} file(s) of a window still being written)' if scan.pending else ''
    return [f'unlisted file: {p}' for p in scan.unlisted], 'no unlisted shards' + pending


def check_exports_intact(scan: Scan):
    return scan.export_problems, f'{scan.exports} exported file(s) found, bytes and sha256 match the manifest'


# Every task's dataset: its files against the manifest.
FILE_CHECKS: Dict[str, Callable] = {
    'shards exist': check_shards_exist,
    'shards intact': check_shards_intact,
    'no unlisted shards': check_no_unlisted,
    'exports intact': check_exports_intact,
}
# A continuation dataset's checks, in the order they print (each task's: FILE_CHECKS, then its format's).
CHECKS = {**FILE_CHECKS, **checks_of(continuation.CHECK)}


def run_checks(scan: Scan) -> List[tuple]:
    """(name, passed, message) of every check for the dataset's task: the file checks, then the
    checks of its examples (pipelines/verify_examples.py) by the task's format."""
    results = []
    for name, check in {**FILE_CHECKS, **checks_of(scan.format_check)}.items():
        problems, summary = check(scan)
        results.append((name, not problems, summary if not problems else _listing(list(problems))))
    return results


def decode_examples(root: str, manifest: dict, count: int, out_dir: str, seed: int = 0) -> List[str]:
    """Decodes ``count`` random examples' codes to WAVs in ``out_dir`` with the manifest's codec."""
    import soundfile
    from schemas.webdataset import read_samples
    from transforms.codec import CodecSettings, load_codec
    codec = manifest['codec']
    settings = CodecSettings(name=codec['name'], weights=codec['weights_kind'], seed=codec['weights_seed'] or 0,
                             path=codec['weights_path'], backend=codec['backend'], device='cpu')
    shards = [(split, s['path']) for split, fmt, s in _listed_shards(manifest) if fmt == 'webdataset']
    keys = sorted((split, path, i) for split, path in shards
                  for i in range(next(s['examples'] for _, f, s in _listed_shards(manifest) if s['path'] == path)))
    chosen = set(random.Random(seed).sample(keys, min(count, len(keys))))
    model = load_codec(settings)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for split, path in shards:
        wanted = {i for s, p, i in chosen if p == path}
        for i, sample in enumerate(read_samples(join(root, path)) if wanted else ()):
            if i not in wanted:
                continue
            meta = sample['json']
            for name in continuation.CODE_FIELDS:
                scale = meta.get(f'{name}_scale')
                audio = model.decode(sample[f'{name}.npy'][None], None if scale is None else [scale])[0]
                out = os.path.join(out_dir, f'{split}-{sample["__key__"]}-{name}.wav')
                soundfile.write(out, audio.T, codec['sample_rate_hz'], subtype='PCM_16')
                written.append(out)
    return written


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m pipelines.verify', allow_abbrev=False,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', help='Dataset root (the folder of manifest.json): local path, s3:// or gs://.')
    parser.add_argument('--decode', type=int, default=0,
                        help='Decode this many random examples back to audio with the manifest\'s codec. Default: 0.')
    parser.add_argument('--decode-dir', default=None,
                        help='Where the decoded WAVs go. Default: ./verify-decoded-<dataset name>.')
    parser.add_argument('--seed', type=int, default=0, help='Seed of the choice of examples to decode. Default: 0.')
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    args = parse_tool_args(make_parser(), argv)
    if args.decode < 0:
        print('error: --decode must be 0 or more', file=sys.stderr)
        return 2
    try:
        scan = scan_dataset(args.dataset, show_progress=True)
    except (OSError, ValueError, KeyError, TypeError) as e:   # no manifest, or not one this tool can read
        print(f'FAIL  manifest: cannot read {join(args.dataset, MANIFEST_NAME)}: {type(e).__name__}: {e}')
        print('TOTAL 1 check: 0 PASS, 1 FAIL')
        return 1
    results = run_checks(scan)
    for name, passed, message in results:
        print(f'{"PASS" if passed else "FAIL"}  {name}: {message}')
    failed = sum(1 for _, passed, _ in results if not passed)
    if args.decode and scan.task != 'continuation':
        print(f'not decoding: --decode turns continuation codes back into audio; this is a {scan.task} dataset')
    elif args.decode and not failed:
        name = os.path.basename(args.dataset.rstrip('/')) or 'dataset'
        out_dir = args.decode_dir or f'verify-decoded-{name}'
        written = decode_examples(args.dataset, read_manifest(args.dataset), args.decode, out_dir, args.seed)
        print(f'decoded {len(written) // 2} example(s) to {len(written)} WAV(s) in {out_dir}')
    elif args.decode:
        print('not decoding: the dataset failed its checks')
    print(f'TOTAL {len(results)} checks: {len(results) - failed} PASS, {failed} FAIL')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
