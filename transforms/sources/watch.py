"""Watching ``<input>/<artist>/<song>.zip`` for new and changed archives (``--streaming``).

Two watchers, one rule: an archive is taken once per (path, size, modification time); one
already in the ledger (``schemas/windows.py``) with the same size and time is not taken again.

- ``WatchArchives``: Beam's ``fileio.MatchContinuously`` (with ``match_updated_files``), for
  unbounded pipelines (Dataflow streaming).
- ``ArchiveWatcher``: a poll with ``FileSystems.match``, for the local driver
  (``pipelines/stream.py``). The local runners cannot run MatchContinuously: the
  BundleBasedDirectRunner's streaming mode rejects splittable DoFns, the FnApiRunner runs
  bounded pipelines only, and Prism is downloaded from the network. On a local disk an archive
  is taken once two polls agree on its size and time (a copy still being written is left for
  the next poll); an object store shows an object only once it is complete.

Song folders (``<artist>/<song>/``) are not watched: a folder has no moment at which it is
complete.
"""
import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from schemas.shards import OBJECT_STORE_SCHEMES
from schemas.windows import archive_item

PATTERNS = ('*/*.zip', '*/*.ZIP')


def list_archives(root: str) -> dict:
    """{path: (size, modification time)} of every song archive under ``root``."""
    root = root.rstrip('/')
    results = FileSystems.match([f'{root}/{pattern}' for pattern in PATTERNS])
    return {m.path: (m.size_in_bytes, m.last_updated_in_seconds) for result in results for m in result.metadata_list}


class ArchiveWatcher:
    """Polls ``root`` for archives not yet taken; returns them as (path, size, mtime)."""

    def __init__(self, root: str, taken: dict, settle: bool = None):
        """``taken``: {path: (size, mtime)} already in the ledger; ``settle``: wait for two equal polls
        (default: on local paths)."""
        self.root = root
        self.taken = dict(taken)
        self.settle = not root.startswith(OBJECT_STORE_SCHEMES) if settle is None else settle
        self.unsettled = {}

    def poll(self) -> list:
        """The archives that are new or changed since taken (and settled), sorted by path."""
        listed = list_archives(self.root)
        fresh = {p: s for p, s in listed.items() if self.taken.get(p) != s}
        ready = {p: s for p, s in fresh.items() if not self.settle or self.unsettled.get(p) == s}
        self.unsettled = {p: s for p, s in fresh.items() if p not in ready}
        self.taken.update(ready)
        return [(p, s[0], s[1]) for p, s in sorted(ready.items())]

    @property
    def waiting(self) -> int:
        """Archives seen once and still settling."""
        return len(self.unsettled)


def _entry(metadata):
    return archive_item(metadata.path, metadata.size_in_bytes, metadata.last_updated_in_seconds)


def _not_taken(item, taken: dict) -> bool:
    entry = item[1]
    return taken.get(entry.path) != (entry.size_bytes, entry.mtime_s)


class WatchArchives(beam.PTransform):
    """An unbounded PCollection of ledger items ``(ARCHIVE, ArchiveEntry)``: every archive under
    ``root`` not in ``taken``, then every new or changed one, polled every ``interval_s``."""

    def __init__(self, root: str, interval_s: float, taken: dict):
        super().__init__()
        self.root = root.rstrip('/')
        self.interval_s = interval_s
        self.taken = dict(taken)

    def expand(self, pbegin):
        matches = tuple(pbegin | f'Match{i}' >> fileio.MatchContinuously(
            f'{self.root}/{pattern}', interval=self.interval_s, match_updated_files=True)
                        for i, pattern in enumerate(PATTERNS))
        return (matches
                | 'AllArchives' >> beam.Flatten()
                | 'ToEntries' >> beam.Map(_entry)
                | 'SkipTaken' >> beam.Filter(_not_taken, self.taken))
