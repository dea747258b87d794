"""manifest.json: the dataset's single entry point.

Holds the full options, the codec and the identity of its weights, the audio
geometry, per split the songs, examples, audio seconds and every shard with its
example count, bytes and sha256, the error counts and, once the run has finished, the
dataset's counters (songs read, plans, windows cut and dropped, audio seconds decoded and
encoded, ...). No timestamps: the same inputs and options give the same manifest. How a
run went (stage times, work reused on --resume) is in counters.json beside it.
"""
import json
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from schemas.records import DictRecord
from schemas.shards import join, write_atomic

MANIFEST_NAME = 'manifest.json'
COUNTERS_NAME = 'counters.json'
ERRORS_PATH = 'errors/errors.jsonl'
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportedFile(DictRecord):
    """A file a task's export wrote beside the shards (a track's WAV, a CSV)."""
    export: str          # 'folders', 'spleeter-csv', ...
    path: str            # relative to the dataset root
    bytes: int
    sha256: str


def exports_section(files) -> dict:
    """{export: {'files', 'bytes', 'paths': [{path, bytes, sha256}] sorted by path}} of ExportedFiles
    (a plain path string is listed under 'other' without size)."""
    section = {}
    for item in files:
        item = item if isinstance(item, ExportedFile) else ExportedFile(export='other', path=str(item), bytes=0,
                                                                        sha256='')
        entry = section.setdefault(item.export, {'files': 0, 'bytes': 0, 'paths': []})
        entry['files'] += 1
        entry['bytes'] += item.bytes
        entry['paths'].append({'path': item.path, 'bytes': item.bytes, 'sha256': item.sha256})
    for entry in section.values():
        entry['paths'].sort(key=lambda p: p['path'])
    return dict(sorted(section.items()))


def build_manifest(info: dict, shard_stats, split_stats: dict, errors_by_stage: dict, exported=()) -> dict:
    """Assembles the manifest from the run's description and what the sinks reported; ``exported``:
    the ExportedFiles of the task's exports (listed under ``exports`` when there are any)."""
    splits = {}
    for name in sorted(set(split_stats) | {s.split for s in shard_stats}):
        stats = split_stats.get(name, {'songs': 0, 'examples': 0, 'audio_seconds': 0.0})
        shards = {}
        for shard in sorted(shard_stats, key=lambda s: (s.format, s.path)):
            if shard.split == name:
                shards.setdefault(shard.format, []).append(
                    {'path': shard.path, 'examples': shard.examples, 'bytes': shard.bytes, 'sha256': shard.sha256})
        splits[name] = dict(stats, shards=shards)
    extra = {'exports': exports_section(exported)} if exported else {}
    return dict(info, format_version=FORMAT_VERSION, splits=splits, **extra,
                totals={'examples': sum(s['examples'] for s in splits.values()),
                        'songs': sum(s['songs'] for s in splits.values()),
                        'audio_seconds': round(sum(s['audio_seconds'] for s in splits.values()), 6)},
                errors={'path': ERRORS_PATH, 'total': sum(errors_by_stage.values()),
                        'by_stage': dict(sorted(errors_by_stage.items()))})


def write_manifest(root: str, manifest: dict) -> str:
    path = join(root, MANIFEST_NAME)
    write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    return path


def read_manifest(root: str) -> dict:
    with FileSystems.open(join(root, MANIFEST_NAME)) as handle:
        return json.loads(handle.read().decode('utf-8'))


def read_errors(root: str) -> list:
    """The run's error records (dicts), [] when the run had none."""
    path = join(root, ERRORS_PATH)
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as handle:
        return [json.loads(line) for line in handle.read().decode('utf-8').splitlines() if line.strip()]


# Counters that describe how a run went rather than what the dataset holds: stage times, work
# reused from a previous run's cache or shards, the work done anew (all differ between an
# uninterrupted and a resumed run) and how it was batched (differs with bundles and workers).
# They stay in counters.json only.
RUN_ONLY_SUFFIXES = ('_ms', '_reused')
RUN_ONLY_NAMES = ('EncodeChunksFn.waveforms_encoded', 'EncodeChunksFn.windows_encoded', 'EncodeChunksFn.segments_encoded',
                  'EncodeChunksFn.batches_encoded', 'WriteShardFn.shards_written')


def dataset_counters(counters: dict) -> dict:
    """The counters that belong in manifest.json: what was read, planned, dropped, decoded,
    encoded and written, identical for every run that builds the same dataset."""
    return {name: int(value) for name, value in sorted(counters.items())
            if not name.endswith(RUN_ONLY_SUFFIXES) and name not in RUN_ONLY_NAMES}


def add_counters(root: str, manifest: dict, counters: dict) -> dict:
    """Rewrites manifest.json (atomically) with the run's dataset counters; returns it."""
    manifest = dict(manifest, counters=dataset_counters(counters))
    write_manifest(root, manifest)
    return manifest


def write_counters(root: str, counters: dict) -> str:
    """Writes all the run's counters (``{'<DoFn>.<thing>_<outcome>': value}``) beside the manifest."""
    path = join(root, COUNTERS_NAME)
    data = {name: int(value) for name, value in sorted(counters.items())}
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    return path


def read_counters(root: str):
    """The counters of the run that built ``root``, or None when they were not recorded."""
    path = join(root, COUNTERS_NAME)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode('utf-8'))


def window_frames(manifest: dict, where: str) -> int:
    """Codec frames per example window of a continuation dataset, from the manifest's ``windows``
    (the geometry the build recorded: frames, chunk, hop and margin samples)."""
    if 'windows' not in manifest:
        raise ValueError(f'{where}: the manifest records no "windows" geometry (format_version '
                         f'{manifest.get("format_version")}, an older build): rebuild the dataset')
    return int(manifest['windows']['frames'])
