"""The interface every task implements.

A task is a PTransform from split songs (``LoadedSong`` with ``split`` set) to the records
it writes, plus the few facts the shared stages and sinks need from it: the audio format
LoadStems decodes to, the target classes FillMissing completes, the shard writers, the size
of a record and what the manifest says about the task. Sources, loading, splitting, the
error log, shard assignment and the manifest are shared by every task.

A record a task emits has ``example_id`` and ``meta`` with ``split``, ``song_id`` and
``duration_seconds`` (the sinks shard, sort and count by these).
"""
import argparse

import apache_beam as beam

# The key of a task's records in what its expand returns (failures are under FAILED).
RECORDS = 'records'


class Task(beam.PTransform):
    """Base of every task. Subclasses set NAME, CONFIG, DEFAULTS and WRITERS, and define
    ``audio_format() -> (sample rate Hz, channels)`` (what LoadStems decodes every stem to)
    and ``expand(songs) -> {RECORDS: records, FAILED: failures}`` (a PCollection of FailedRecords,
    possibly empty; ContainFailures drops every record of a song in it)."""

    NAME = ''
    # The frozen dataclass of what the task reads from the flags, with
    # ``from_args(args, beam_options)`` (the only place a task looks at the flags).
    CONFIG = None
    # Flag defaults of this task, applied when the flag was left at the parser's default.
    DEFAULTS = {}
    # Further defaults with --demo (a quick build of the demo corpus), applied the same way.
    DEMO_DEFAULTS = {}
    # format -> writer class (constructed with the shard path; write(record); context manager).
    WRITERS = {}
    # What pipelines.verify reads of the shards (schemas.format_check.FormatCheck, in the format's module).
    CHECK = None
    # The PipelineOptions subclasses declaring this task's own flags: every other task refuses them.
    OPTIONS = ()
    # Dests of flags another task's OPTIONS declares that this task reads too (a flag is
    # declared once; --sample-rate is separation's and descriptors'): never refused for it.
    SHARED_OPTIONS = ()
    # What the task writes under the output besides the shards, the error log and the manifest:
    # folders and files (--overwrite deletes them, whichever task wrote them).
    OUTPUT_FOLDERS = ()
    OUTPUT_FILES = ()

    def __init__(self, config):
        super().__init__()
        self.config = config

    @classmethod
    def from_args(cls, args, beam_options) -> 'Task':
        """The task for the flags: its frozen config (``CONFIG.from_args``) is read from them once,
        checked there (a flag this task cannot honour raises ValueError), and is all it reads."""
        return cls(cls.CONFIG.from_args(args, beam_options))

    @classmethod
    def resolve_defaults(cls, args, parser_defaults: dict) -> None:
        """Sets this task's defaults on flags the user left at the parser's default."""
        for flag, value in cls.DEFAULTS.items():
            if getattr(args, flag) == parser_defaults.get(flag):
                setattr(args, flag, value)

    @classmethod
    def option_names(cls) -> tuple:
        """The argparse names (dests) of this task's own flags (OPTIONS)."""
        parser = argparse.ArgumentParser(add_help=False)
        for options in cls.OPTIONS:
            options._add_argparse_args(parser)
        return tuple(action.dest for action in parser._actions)

    def fill_classes(self) -> tuple:
        """Canonical classes FillMissing makes every song have (empty: none)."""
        return ()

    def manifest_info(self) -> dict:
        """What the manifest records about the task (codec, audio format, targets...)."""
        return {}

    def shaping(self) -> dict:
        """What shapes the output besides the options, for the run's fingerprint (the codec's
        runtime, device and the settings its codes depend on)."""
        return {}

    @staticmethod
    def size_of(record) -> int:
        """About what a record adds to a shard, in bytes (for --shard-mb)."""
        return 2048

    def exports(self, records, root: str):
        """Extra outputs beside the shards (folder layouts, CSV, JSON indexes). Returns a list of
        PCollections whose elements are the files written, as ``schemas.manifest.ExportedFile``
        (listed in the manifest with bytes and sha256) or plain paths; the manifest waits for them.
        Called after ``expand``: an export may use what expand made from the songs."""
        return []

    def summary(self, manifest: dict, metrics: dict) -> list:
        """Task-specific lines of the run's summary."""
        return []

    def random_codec_seed(self):
        """The seed of random codec weights when the task encodes with them, else None."""
        return None
