"""The dead-letter output every stage shares, and the containment of the stages after LoadStems.

A source or decoding stage catches the errors that belong to its input (``INPUT_ERRORS``),
turns each into a ``FailedRecord`` on the ``failed`` output and goes on. The stages after
LoadStems (render, augment, distort, chunk, encode, assemble, write) are wrapped by
``contained``: any exception ends that song's element with a FailedRecord naming the stage,
and ``ContainFailures`` then drops every record the song had already produced, so a song is
in the dataset whole or not at all.

``STEMFORGE_FAULTS`` is the fault-injection hook the tests use: ``stage=song-id-prefix`` items,
comma separated, make that stage raise for those songs (``write=example-id`` for one record).
"""
import contextlib
import functools
import logging
import os
import zipfile

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.records import FailedRecord

FAILED = 'failed'
FAULTS_ENV = 'STEMFORGE_FAULTS'
LOG = logging.getLogger('transforms.failures')


class InputError(ValueError):
    """Bad input: a broken, hostile or unusable file. Carries no traceback to the log."""


class InjectedFault(RuntimeError):
    """Raised where ``STEMFORGE_FAULTS`` asks for it."""


class MissingCodes(RuntimeError):
    """Examples of a song lack codes: one of its waveforms failed at an earlier stage."""


class StageError(Exception):
    """An exception raised inside a named stage of a larger step (augment inside render)."""

    def __init__(self, stage: str, error: Exception):
        super().__init__(str(error))
        self.stage, self.error = stage, error


# What bad input raises: our own checks, broken zips, I/O on the input, decoders' ValueErrors.
INPUT_ERRORS = (InputError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError)


def failure(stage: str, input_path: str, error: Exception, song_id=None) -> pvalue.TaggedOutput:
    """Counts the failure and wraps it for the ``failed`` output."""
    Metrics.counter('errors', stage).inc()
    message = str(error) or repr(error)
    return pvalue.TaggedOutput(FAILED, FailedRecord(
        stage=stage, input=input_path, error_type=type(error).__name__, message=message, song_id=song_id))


def inject_fault(stage: str, song_id) -> None:
    """Raises InjectedFault when ``STEMFORGE_FAULTS`` names ``stage`` for this song."""
    spec = os.environ.get(FAULTS_ENV)
    if not spec or not song_id:
        return
    for item in spec.split(','):
        name, _, prefix = item.strip().partition('=')
        if name == stage and prefix and str(song_id).startswith(prefix):
            raise InjectedFault(f'fault injected at stage {stage} ({FAULTS_ENV})')


@contextlib.contextmanager
def in_stage(stage: str, song_id):
    """Attributes an exception raised inside the block to ``stage``."""
    try:
        inject_fault(stage, song_id)
        yield
    except StageError:
        raise
    except Exception as e:
        raise StageError(stage, e) from e


def contained(stage: str, song_of):
    """Decorates a DoFn's ``process``: an exception ends the element with a FailedRecord of the
    song ``song_of(element)`` (stage ``stage``, or the inner stage of a StageError) on ``failed``;
    what the element yielded before stays, for ContainFailures to drop."""
    def wrap(process):
        @functools.wraps(process)
        def run(self, element, *args, **kwargs):
            song_id = song_of(element)
            try:
                inject_fault(stage, song_id)
                yield from process(self, element, *args, **kwargs)
            except Exception as e:   # noqa: BLE001 - a song's failure must not take the job down
                yield song_failure(stage, song_id, e)
        return run
    return wrap


def song_failure(stage: str, song_id: str, error: Exception) -> pvalue.TaggedOutput:
    """The FailedRecord of a song that failed after LoadStems (its input is filled in later)."""
    if isinstance(error, StageError):
        stage, error = error.stage, error.error
    if not isinstance(error, INPUT_ERRORS + (InjectedFault,)):
        LOG.warning('song %s failed at %s', song_id, stage, exc_info=error)
    return failure(stage, song_id, error, song_id)


def _name_input(record: FailedRecord, inputs: dict) -> FailedRecord:
    """A late failure names the song's input file (the record carried only the song id)."""
    if record.song_id and record.input == record.song_id and record.song_id in inputs:
        return FailedRecord(stage=record.stage, input=inputs[record.song_id], error_type=record.error_type,
                            message=record.message, song_id=record.song_id)
    return record


def _song_failures(item):
    """A song's late failures, one per distinct (stage, error, message) (each of its waveforms
    may fail alike), less 'examples lack codes' when an earlier stage says why."""
    _, records = item
    distinct = {(r.stage, r.error_type, r.message): r for r in records}
    records = [distinct[k] for k in sorted(distinct)]
    causes = [r for r in records if r.error_type != MissingCodes.__name__]
    return causes or records


class DropFailedSongsFn(beam.DoFn):
    """Drops every record of a song with a late failure."""

    def __init__(self):
        self.records_dropped = Metrics.counter('ContainFailures', 'records_dropped')

    def process(self, record, failed):
        if record.meta.song_id in failed:
            self.records_dropped.inc()
            return
        yield record


class ContainFailures(beam.PTransform):
    """(records, late failures, split songs) -> (the records of songs that did not fail, the failures
    with their song's input path). A song appears in the dataset whole or not at all."""

    def __init__(self, check_record=None):
        super().__init__()
        self.check = CheckRecordFn(check_record) if check_record else None

    def expand(self, inputs):
        records, failures, songs = inputs
        if self.check is not None:
            checked = records | 'CheckRecords' >> beam.ParDo(self.check).with_outputs(FAILED, main='records')
            records, failures = checked.records, (failures, checked[FAILED]) | 'WithWriteFailures' >> beam.Flatten()
        inputs = songs | 'SongInputs' >> beam.Map(lambda song: (song.ref.song_id, song.ref.input_path))
        failures = (failures
                    | 'BySong' >> beam.Map(lambda r: (r.song_id, r))
                    | 'GroupBySong' >> beam.GroupByKey()
                    | 'PerSong' >> beam.FlatMap(_song_failures)
                    | 'NameInputs' >> beam.Map(_name_input, beam.pvalue.AsDict(inputs)))
        failed = (failures
                  | 'FailedSongs' >> beam.Map(lambda r: r.song_id)
                  | 'Distinct' >> beam.Distinct()
                  | 'AsKeys' >> beam.Map(lambda song_id: (song_id, True)))
        kept = records | 'DropFailedSongs' >> beam.ParDo(DropFailedSongsFn(), beam.pvalue.AsDict(failed))
        return kept, failures


class CheckRecordFn(beam.DoFn):
    """The write stage's part that belongs to a record: serializing it (a record that cannot be
    written fails its song here, before any shard is written)."""

    def __init__(self, check):
        self.check = check

    @contained('write', lambda record: record.meta.song_id)
    def process(self, record):
        inject_fault('write', record.example_id)    # one record of a song (the hook also takes example ids)
        self.check(record)
        yield record
