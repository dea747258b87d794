"""WriteWindow: the streaming sink. Each window's examples become complete shards named after the
window, then the window's manifest part, then the merged manifest.

Per window, as WriteDataset does for a whole batch: shard membership is a stable hash of the
example id modulo the split's shard count (from the window's size per split), rows sorted by
id, every file written under a temporary name and renamed. Then ``manifests/<window>.json``
(shards, counts, sha256, errors and the archive ledger, see ``schemas/windows.py``) marks the
window complete, and a single keyed, stateful step merges it into ``manifest.json`` and
``errors/errors.jsonl``, one window at a time, so readers only ever see completed windows.
It works the same on a bounded window (the local driver: the global window, named by the
driver) and on the fixed windows of an unbounded stream (named by their start).
"""
import dataclasses
import json
from typing import Tuple

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.window import GlobalWindows

from schemas.shards import shard_path
from schemas.continuation import sample_bytes
from schemas.windows import ARCHIVE, DUPLICATE, SONG, build_part, publish_part, window_name, write_part
from transforms.write import WriteShardFn, shards_and_stats


class WindowNamer:
    """Names windows ``w<sequence>-<start UTC>``: a bounded window from the start the driver gives,
    a stream's fixed windows from their own start (``sequence`` then counts launches)."""

    def __init__(self, sequence: int, start_s: float = None):
        self.sequence = sequence
        self.start_s = start_s

    def __call__(self, window) -> tuple:
        start = self.start_s if self.start_s is not None else window.start.micros / 1e6
        return window_name(self.sequence, start), start


class WindowShardFn(WriteShardFn):
    """WriteShardFn with the window's name in front of every shard's file name."""

    def __init__(self, root: str, writers: dict, namer: WindowNamer):
        super().__init__(root, None, writers)
        self.namer = namer

    def shard_relative(self, fmt: str, split: str, index: int, window) -> str:
        return shard_path(fmt, split, index, self.namer(window)[0])


def _ledger(items) -> list:
    """ArchiveEntry of every listed archive, with the song read from it and duplicates marked."""
    entries = {e.path: e for kind, e in items if kind == ARCHIVE}
    songs = dict(item for kind, item in items if kind == SONG)
    duplicates = {d.path: d for kind, d in items if kind == DUPLICATE}
    return [dataclasses.replace(entry, song_id=songs.get(path),
                                duplicate_of=duplicates[path].duplicate_of if path in duplicates else None)
            for path, entry in sorted(entries.items())]


class WritePartFn(beam.DoFn):
    """(None, [(kind, item)]) of one window -> the relative path of its written part."""

    def __init__(self, root: str, fingerprint: str, namer: WindowNamer):
        self.root = root
        self.fingerprint = fingerprint
        self.namer = namer

    def process(self, element, window=beam.DoFn.WindowParam):
        items = list(element[1])
        name, start = self.namer(window)
        shards = [item for kind, item in items if kind == 'shard']
        splits = dict(item for kind, item in items if kind == 'split')
        lines = sorted(json.dumps(item.to_dict(), sort_keys=True) for kind, item in items if kind == 'failure')
        ledger = _ledger(items)
        part = build_part(name, self.namer.sequence, start, self.fingerprint, shards, splits, lines, ledger)
        yield write_part(self.root, part, lines)
        self._forget_work({a.song_id for a in ledger if a.song_id and not a.duplicate_of})

    def _forget_work(self, song_ids) -> None:
        """Deletes the window's songs' plans and cached codes: they are in shards now."""
        work = FileSystems.join(self.root, '_work')
        patterns = [FileSystems.join(work, 'plans', f'{s}.json') for s in sorted(song_ids)]
        patterns += [FileSystems.join(work, 'codes', f'{s}--*.npz') for s in sorted(song_ids)]
        found = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list] if patterns else []
        if found:
            FileSystems.delete(found)


class PublishPartFn(beam.DoFn):
    """('manifest', part path) -> manifest.json with the part merged in. Stateful on one key, so
    windows are merged one at a time; the state counts the parts merged."""
    MERGED = ReadModifyWriteStateSpec('parts_merged', VarIntCoder())

    def __init__(self, root: str, info: dict):
        self.root = root
        self.info = info

    def process(self, element, merged=beam.DoFn.StateParam(MERGED)):
        path = publish_part(self.root, self.info, element[1])
        merged.write((merged.read() or 0) + 1)
        yield path


class WriteWindow(beam.PTransform):
    """(examples, failures, ledger) of each window -> the manifest's path after each window.

    ``ledger`` holds ``(ARCHIVE, ArchiveEntry)`` of every archive listed, ``(SONG, (path,
    song_id))`` of every song read and ``(DUPLICATE, DuplicateArchive)`` of every copy skipped.
    """

    def __init__(self, root: str, info: dict, namer: WindowNamer, shard_examples: int = 1000, shard_mb=None,
                 writers: dict = None, size_of=sample_bytes):
        super().__init__()
        if shard_examples is not None and shard_examples < 1:
            raise ValueError('--shard-examples must be at least 1')
        self.root, self.info, self.namer = root, info, namer
        self.shard_examples, self.shard_mb = shard_examples, shard_mb
        self.writers, self.size_of = writers, size_of

    def expand(self, inputs):
        examples, failures, ledger = inputs
        shards, split_stats = shards_and_stats(examples, self.size_of, self.shard_examples, self.shard_mb,
                                               WindowShardFn(self.root, self.writers, self.namer))
        parts = ((shards | 'TagShards' >> beam.Map(lambda s: ('shard', s)),
                  split_stats | 'TagSplits' >> beam.Map(lambda kv: ('split', kv)),
                  failures | 'TagFailures' >> beam.Map(lambda f: ('failure', f)),
                  ledger)
                 | 'PartItems' >> beam.Flatten()
                 | 'KeyByWindow' >> beam.Map(lambda item: ('part', item))
                 | 'GroupWindow' >> beam.GroupByKey()
                 | 'WritePart' >> beam.ParDo(WritePartFn(self.root, self.info['fingerprint'], self.namer)))
        return (parts
                | 'AllWindows' >> beam.WindowInto(GlobalWindows())
                | 'KeyManifest' >> beam.Map(lambda path: ('manifest', path)).with_output_types(Tuple[str, str])
                | 'PublishPart' >> beam.ParDo(PublishPartFn(self.root, self.info)))
