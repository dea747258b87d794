"""Datasets written in windows (``--streaming``): window names, the archive ledger, manifest
parts and the merged manifest.

A streaming build writes in windows. Window ``w000003-20250101T120500Z`` (a sequence number,
then the window's start in UTC) writes its shards under the split folders with its name in
front (``webdataset/train/w000003-20250101T120500Z-train-000000.tar``), its failures to
``errors/<window>.jsonl`` and, last, its part ``manifests/<window>.json``: its shards with
counts, bytes and sha256, its splits, its errors and every archive it looked at (the ledger).
A window is complete when its part exists. ``manifest.json`` and ``errors/errors.jsonl`` are
then rewritten atomically with the part merged in: the manifest keeps a batch build's format
(every shard of every completed window under ``splits``) and adds ``streaming`` (the parts,
archive and duplicate counts). The parts are the record: the ledger is read back from them
on restart, and the merged files can always be rebuilt from them.
"""
import datetime
import json
import re
from dataclasses import dataclass
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from schemas.manifest import ERRORS_PATH, MANIFEST_NAME, build_manifest, read_manifest, write_manifest
from schemas.records import DictRecord
from schemas.shards import join, write_atomic

PARTS_DIR = 'manifests'
WINDOW_PATTERN = r'w\d{6}-\d{8}T\d{6}Z'
_WINDOW_PREFIX = re.compile(rf'^({WINDOW_PATTERN})[-.]')
WINDOWED_FOLDERS = ('webdataset', 'parquet', 'errors')
# Kinds of the ledger items a window's part is made of: an archive listed, the song read from
# it, a copy skipped.
ARCHIVE, SONG, DUPLICATE = 'archive', 'song', 'duplicate'


@dataclass(frozen=True)
class ArchiveEntry(DictRecord):
    """One archive a window looked at: where, how big and when changed (as listed), the song it
    holds (None when it could not be read) and, for a copy of content already in the dataset,
    the archive that holds it."""
    path: str
    size_bytes: int
    mtime_s: float
    song_id: Optional[str] = None
    duplicate_of: Optional[str] = None


@dataclass(frozen=True)
class DuplicateArchive(DictRecord):
    """An archive skipped because its content (``song_id``) is already in, from ``duplicate_of``."""
    path: str
    song_id: str
    duplicate_of: str


def archive_item(path: str, size_bytes: int, mtime_s: float) -> tuple:
    """A listed archive as a ledger item."""
    return ARCHIVE, ArchiveEntry(path=path, size_bytes=int(size_bytes), mtime_s=float(mtime_s))


def window_name(sequence: int, start_s: float) -> str:
    """``w<sequence, 6 digits>-<start, UTC, to the second>``; sorts in the order windows were made."""
    start = datetime.datetime.fromtimestamp(int(start_s), datetime.timezone.utc)
    return f'w{sequence:06d}-{start:%Y%m%dT%H%M%SZ}'


def window_of(relative_path: str) -> Optional[str]:
    """The window that wrote a file (from the start of its name), or None."""
    found = _WINDOW_PREFIX.match(relative_path.replace('\\', '/').rsplit('/', 1)[-1])
    return found.group(1) if found else None


def part_path(window: str) -> str:
    return f'{PARTS_DIR}/{window}.json'


def errors_part_path(window: str) -> str:
    return f'errors/{window}.jsonl'


def build_part(window: str, sequence: int, start_s: float, fingerprint: str, shard_stats, split_stats: dict,
               failure_lines: list, ledger: list) -> dict:
    """A window's manifest part. ``failure_lines``: its error log lines (JSON); ``ledger``: the
    ArchiveEntry of every archive it listed, with the song read and duplicates marked."""
    by_stage = {}
    for line in failure_lines:
        stage = json.loads(line)['stage']
        by_stage[stage] = by_stage.get(stage, 0) + 1
    part = build_manifest({}, shard_stats, split_stats, by_stage)
    part['errors']['path'] = errors_part_path(window)
    archives = sorted(ledger, key=lambda a: a.path)
    return dict(part, window=window, sequence=sequence, fingerprint=fingerprint,
                start_utc=f'{datetime.datetime.fromtimestamp(int(start_s), datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}',
                archives=[a.to_dict() for a in archives], **ledger_counts(archives))


def ledger_counts(archives) -> dict:
    """Archives ingested (a new song), skipped as duplicates, and failed (unreadable)."""
    duplicates = sum(1 for a in archives if a.duplicate_of)
    ingested = sum(1 for a in archives if a.song_id and not a.duplicate_of)
    return {'ingested': ingested, 'duplicates': duplicates, 'failed': len(archives) - ingested - duplicates}


def write_part(root: str, part: dict, failure_lines: list) -> str:
    """Writes the window's error log, then its part (which marks the window complete)."""
    write_atomic(join(root, part['errors']['path']), ''.join(line + '\n' for line in failure_lines).encode('utf-8'))
    relative = part_path(part['window'])
    write_atomic(join(root, relative), (json.dumps(part, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    return relative


def _read_json(root: str, relative: str) -> dict:
    with FileSystems.open(join(root, relative)) as handle:
        return json.loads(handle.read().decode('utf-8'))


def read_part(root: str, window: str) -> dict:
    return _read_json(root, part_path(window))


def list_parts(root: str) -> list:
    """Relative paths of every completed window's part, oldest first."""
    found = FileSystems.match([join(root, PARTS_DIR) + '/*.json'])[0].metadata_list
    names = [m.path.replace('\\', '/').rsplit('/', 1)[-1] for m in found]
    return sorted(f'{PARTS_DIR}/{n}' for n in names if re.fullmatch(rf'{WINDOW_PATTERN}\.json', n))


def read_parts(root: str) -> list:
    return [_read_json(root, relative) for relative in list_parts(root)]


def _merge_splits(into: dict, splits: dict) -> dict:
    merged = {name: dict(stats, shards={f: list(s) for f, s in stats['shards'].items()})
              for name, stats in into.items()}
    for name, stats in splits.items():
        have = merged.setdefault(name, {'songs': 0, 'examples': 0, 'audio_seconds': 0.0, 'shards': {}})
        have['songs'] += stats['songs']
        have['examples'] += stats['examples']
        have['audio_seconds'] = round(have['audio_seconds'] + stats['audio_seconds'], 6)
        for fmt, shards in stats['shards'].items():
            have['shards'][fmt] = sorted(have['shards'].get(fmt, []) + shards, key=lambda s: s['path'])
    return dict(sorted(merged.items()))


def merge_manifest(info: dict, manifest: Optional[dict], part: dict) -> dict:
    """``manifest`` (None: none yet) with one more completed window's part merged in."""
    done = manifest['streaming'] if manifest else {'parts': [], 'windows': 0, 'archives_ingested': 0,
                                                   'duplicates_skipped': 0, 'archives_failed': 0}
    splits = _merge_splits(manifest['splits'] if manifest else {}, part['splits'])
    by_stage = dict(manifest['errors']['by_stage']) if manifest else {}
    for stage, count in part['errors']['by_stage'].items():
        by_stage[stage] = by_stage.get(stage, 0) + count
    merged = build_manifest(info, [], {}, by_stage)
    merged['splits'] = splits
    merged['totals'] = {'examples': sum(s['examples'] for s in splits.values()),
                        'songs': sum(s['songs'] for s in splits.values()),
                        'audio_seconds': round(sum(s['audio_seconds'] for s in splits.values()), 6)}
    merged['streaming'] = {'parts': sorted(done['parts'] + [part_path(part['window'])]),
                           'windows': done['windows'] + 1,
                           'archives_ingested': done['archives_ingested'] + part['ingested'],
                           'duplicates_skipped': done['duplicates_skipped'] + part['duplicates'],
                           'archives_failed': done['archives_failed'] + part['failed']}
    if manifest and 'counters' in manifest:    # the local driver's sums, updated after each window
        merged['counters'] = manifest['counters']
    return merged


def _read_lines(root: str, relative: str) -> list:
    path = join(root, relative)
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as handle:
        return [line for line in handle.read().decode('utf-8').splitlines() if line.strip()]


def _write_merged(root: str, manifest: dict, error_lines: list) -> str:
    """The merged error log, then the manifest (readers see a window's errors with its shards)."""
    write_atomic(join(root, ERRORS_PATH), ''.join(line + '\n' for line in sorted(error_lines)).encode('utf-8'))
    return write_manifest(root, manifest)


def publish_part(root: str, info: dict, relative: str) -> str:
    """Merges one completed part into ``manifest.json`` and ``errors/errors.jsonl`` (nothing when the
    manifest already lists it: a retried window). Returns the manifest's path."""
    current = read_manifest(root) if FileSystems.exists(join(root, MANIFEST_NAME)) else None
    current = current if current and 'streaming' in current else None
    if current and relative in current['streaming']['parts']:
        return join(root, MANIFEST_NAME)
    part = _read_json(root, relative)
    errors = _read_lines(root, ERRORS_PATH) if current else []
    return _write_merged(root, merge_manifest(info, current, part), errors + _read_lines(root, part['errors']['path']))


def rebuild_manifest(root: str, info: dict, parts: list) -> Optional[str]:
    """Rewrites ``manifest.json`` and ``errors/errors.jsonl`` from every completed part (after a
    run stopped between a part and its merge). None when there is no part."""
    manifest, errors = None, []
    for part in parts:
        manifest = merge_manifest(info, manifest, part)
        errors += _read_lines(root, part['errors']['path'])
    return _write_merged(root, manifest, errors) if manifest else None


def split_pending(manifest: dict, unlisted: list) -> tuple:
    """(unlisted files, files of a window still being written) of a streaming dataset: a file
    named by a window with no completed part, or a temporary file, is pending, not stray."""
    if 'streaming' not in manifest:
        return list(unlisted), []
    done = {p.rsplit('/', 1)[-1][:-len('.json')] for p in manifest['streaming']['parts']}
    pending = [p for p in unlisted if '.tmp-' in p or (window_of(p) is not None and window_of(p) not in done)]
    return [p for p in unlisted if p not in pending], pending


def ledger_of(parts: list) -> tuple:
    """({path: (size, mtime)} of every archive looked at, {song_id: path} of every song ingested)."""
    seen, songs = {}, {}
    for part in parts:
        for archive in map(ArchiveEntry.from_dict, part['archives']):
            seen[archive.path] = (archive.size_bytes, archive.mtime_s)
            if archive.song_id and not archive.duplicate_of:
                songs.setdefault(archive.song_id, archive.path)
    return seen, songs


def next_sequence(parts: list) -> int:
    return max((part['sequence'] for part in parts), default=0) + 1


def orphan_files(root: str, parts: list) -> list:
    """Files a stopped run left: temporary files, and files of windows that never completed."""
    done = {part['window'] for part in parts}
    found = []
    for folder in WINDOWED_FOLDERS + (PARTS_DIR,):
        for meta in FileSystems.match([join(root, folder).rstrip('/') + '/**'])[0].metadata_list:
            window = window_of(meta.path)
            if '.tmp-' in meta.path or (window is not None and window not in done and folder != PARTS_DIR):
                found.append(meta.path)
    return sorted(found)
