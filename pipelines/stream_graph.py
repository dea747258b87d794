"""The streaming build's graphs: the batch build's stages between a watching source and the
windowed sink.

Archives (ledger items) -> ReadSongRefs -> SkipDuplicates -> FillMissing -> LoadStems ->
AssignSplit -> the task -> WriteWindow. ``window_graph`` is one bounded window (the local
driver runs one per window); ``unbounded_graph`` is the standard streaming graph (Dataflow):
``fileio.MatchContinuously`` -> the same stages, with the duplicate check kept in state for
the job's life and everything after it in fixed windows of ``--window-seconds``.
"""

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows

from pipelines.graph import songs_to_sink
from schemas.windows import DUPLICATE, SONG
from transforms.dedup import DUPLICATES, SkipDuplicates
from transforms.failures import FAILED
from transforms.sources.stems import ReadSongRefFn
from transforms.sources.watch import WatchArchives
from transforms.write_window import WindowNamer, WriteWindow


def _read_new_songs(archives, args, known: dict, unbounded: bool):
    """Ledger items (ARCHIVE, ArchiveEntry) -> (new SongRefs, read failures, ledger of songs and
    duplicates)."""
    read = (archives
            | 'SongContainers' >> beam.Map(lambda item, root: (root.rstrip('/'), 'zip', item[1].path), args.input)
            | 'ReadSongRefs' >> beam.ParDo(ReadSongRefFn(int(args.max_uncompressed_mb * 2**20)))
            .with_outputs(FAILED, main='songs'))
    fresh = read.songs | 'SkipDuplicates' >> SkipDuplicates(known, unbounded)
    ledger = (read.songs | 'LedgerSongs' >> beam.Map(lambda ref: (SONG, (ref.input_path, ref.song_id))),
              fresh[DUPLICATES] | 'LedgerDuplicates' >> beam.Map(lambda d: (DUPLICATE, d)))
    return fresh.songs, read[FAILED], ledger


def _songs_to_sink(songs, read_failures, ledger, args, task, info: dict, namer: WindowNamer):
    """The batch build's song stages and the task, then WriteWindow. Returns the manifest paths."""
    def sink(records, failures):
        return (records, failures, ledger) | 'WriteWindow' >> WriteWindow(
            args.output, info, namer, args.shard_examples, args.shard_mb, writers=task.WRITERS, size_of=task.size_of)
    return songs_to_sink(songs, (read_failures,), args, task, sink, whole_corpus=False)


def window_graph(pipeline, args, task, info: dict, archives: list, known: dict, namer: WindowNamer):
    """One bounded window: ``archives`` (ledger items of the archives found) -> shards, the part and
    the merged manifest under ``args.output``."""
    listed = pipeline | 'Archives' >> beam.Create(archives)
    songs, failures, ledger = _read_new_songs(listed, args, known, unbounded=False)
    ledger = (listed,) + ledger | 'Ledger' >> beam.Flatten()
    return _songs_to_sink(songs, failures, ledger, args, task, info, namer)


def unbounded_graph(pipeline, args, task, info: dict, taken: dict, known: dict, namer: WindowNamer):
    """The standard streaming graph: MatchContinuously every ``--watch-interval`` seconds, the
    duplicate check in state, fixed windows of ``--window-seconds`` from there to the sink."""
    listed = pipeline | 'WatchArchives' >> WatchArchives(args.input, args.watch_interval, taken)
    return windowed_graph(listed, args, task, info, known, namer)


def windowed_graph(listed, args, task, info: dict, known: dict, namer: WindowNamer):
    """An unbounded PCollection of listed archives (ledger items) -> the dataset, in fixed windows."""
    songs, failures, ledger = _read_new_songs(listed, args, known, unbounded=True)
    ledger = (listed,) + ledger | 'Ledger' >> beam.Flatten()
    window = lambda label: label >> beam.WindowInto(FixedWindows(args.window_seconds))
    return _songs_to_sink(songs | window('WindowSongs'), failures | window('WindowFailures'),
                          ledger | window('WindowLedger'), args, task, info, namer)
