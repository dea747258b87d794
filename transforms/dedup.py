"""SkipDuplicates: a build reads each song's content once.

A song whose content (the song id: for archives a hash of their bytes) is already in the
dataset, or is read twice (a copy under another name or artist), is skipped: the first copy is
kept and every other becomes a ``DuplicateArchive`` naming the input that holds the content,
counted as ``archives_duplicate``. Without it, a copy would repeat every example id and, under
another artist, could put the same song in two splits. Two ways, one contract:

- ``FirstCopyFn`` (batch builds, and bounded windows on the local runner): groups songs by id
  and keeps the copy with the smallest path, so the choice does not depend on arrival order;
  a streaming build's songs already in the dataset come from the ledger (``known``). A batch
  build records each skipped copy in its error log (``duplicate_failure``).
- ``FirstSeenFn`` (unbounded streams, Dataflow): a stateful DoFn in the global window that
  remembers the first path seen per song id for the life of the job, on top of ``known``.
"""
from typing import Any, Tuple

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from schemas.records import FailedRecord
from schemas.windows import DuplicateArchive

DUPLICATES = 'duplicates'


def duplicate_failure(duplicate: DuplicateArchive) -> FailedRecord:
    """A skipped copy as a batch build's error-log entry (stage ``read``)."""
    Metrics.counter('errors', 'read').inc()
    return FailedRecord(stage='read', input=duplicate.path, error_type='DuplicateContent',
                        message=f'{duplicate.path}: same content as {duplicate.duplicate_of} (song '
                                f'{duplicate.song_id}); skipped, the copy with the smallest path is kept',
                        song_id=duplicate.song_id)


class _Counting:
    def _counters(self):
        self.archives_new = Metrics.counter(self.__class__, 'archives_new')
        self.archives_duplicate = Metrics.counter(self.__class__, 'archives_duplicate')

    def _duplicate(self, ref, kept: str):
        self.archives_duplicate.inc()
        return beam.pvalue.TaggedOutput(DUPLICATES, DuplicateArchive(path=ref.input_path, song_id=ref.song_id,
                                                                     duplicate_of=kept))


class FirstCopyFn(beam.DoFn, _Counting):
    """(song_id, [SongRef]) -> the first copy by path (main) and the others (``duplicates``)."""

    def __init__(self, known: dict):
        self.known = dict(known)      # song_id -> the archive holding it in the dataset
        self._counters()

    def process(self, element):
        song_id, refs = element
        refs = sorted(refs, key=lambda r: r.input_path)
        kept = self.known.get(song_id)
        if kept is None:
            kept = refs[0].input_path
            self.archives_new.inc()
            yield refs[0]
            refs = refs[1:]
        for ref in refs:
            yield self._duplicate(ref, kept)


class FirstSeenFn(beam.DoFn, _Counting):
    """(song_id, SongRef) -> the song the first time its id is seen in this job or the dataset."""
    FIRST = ReadModifyWriteStateSpec('first_path', StrUtf8Coder())

    def __init__(self, known: dict):
        self.known = dict(known)
        self._counters()

    def process(self, element, first=beam.DoFn.StateParam(FIRST)):
        song_id, ref = element
        kept = self.known.get(song_id) or first.read()
        if kept is not None:
            yield self._duplicate(ref, kept)
            return
        first.write(ref.input_path)
        self.archives_new.inc()
        yield ref


class SkipDuplicates(beam.PTransform):
    """SongRef -> new SongRefs (main) and ``duplicates`` (DuplicateArchive).

    Args:
        known: song_id -> archive path of the songs already in the dataset.
        unbounded: remember ids across the whole stream with state (the global window), not per
            bounded window.
    """

    def __init__(self, known: dict, unbounded: bool = False):
        super().__init__()
        self.known = dict(known)
        self.unbounded = unbounded

    def expand(self, songs):
        keyed = songs | 'KeyBySong' >> beam.Map(lambda ref: (ref.song_id, ref)).with_output_types(Tuple[str, Any])
        if self.unbounded:
            return keyed | 'FirstSeen' >> beam.ParDo(FirstSeenFn(self.known)).with_outputs(DUPLICATES, main='songs')
        return (keyed
                | 'GroupCopies' >> beam.GroupByKey()
                | 'FirstCopy' >> beam.ParDo(FirstCopyFn(self.known)).with_outputs(DUPLICATES, main='songs'))
