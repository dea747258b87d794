"""manifest.json: the dataset's single entry point.

Holds the full options, the codec and the identity of its weights, the audio
geometry, per split the songs, examples, audio seconds and every shard with its
example count, bytes and sha256, and the error counts. No timestamps: the same
inputs and options give the same manifest.
"""
import json

from apache_beam.io.filesystems import FileSystems

from schemas.shards import join, write_atomic

MANIFEST_NAME = 'manifest.json'
COUNTERS_NAME = 'counters.json'
ERRORS_PATH = 'errors/errors.jsonl'
FORMAT_VERSION = 1


def build_manifest(info: dict, shard_stats, split_stats: dict, errors_by_stage: dict) -> dict:
    """Assembles the manifest from the run's description and what the sinks reported."""
    splits = {}
    for name in sorted(set(split_stats) | {s.split for s in shard_stats}):
        stats = split_stats.get(name, {'songs': 0, 'examples': 0, 'audio_seconds': 0.0})
        shards = {}
        for shard in sorted(shard_stats, key=lambda s: (s.format, s.path)):
            if shard.split == name:
                shards.setdefault(shard.format, []).append(
                    {'path': shard.path, 'examples': shard.examples, 'bytes': shard.bytes, 'sha256': shard.sha256})
        splits[name] = dict(stats, shards=shards)
    return dict(info, format_version=FORMAT_VERSION, splits=splits,
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


def write_counters(root: str, counters: dict) -> str:
    """Writes the run's counters (``{'<DoFn>.<thing>_<outcome>': value}``) beside the manifest."""
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
