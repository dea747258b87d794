"""Continuous mode: ``python -m pipelines.build --streaming --input=DIR --output=DIR``.

Watches ``<input>/<artist>/<song>.zip`` (local, ``s3://``, ``gs://``) and grows the dataset in
windows of ``--window-seconds``, through the batch build's stages (see
``pipelines/stream_graph.py``) and a windowed sink (``transforms/write_window.py``).

- On the local runner a driver loop polls the input every ``--watch-interval`` seconds and, as
  each window closes (fixed windows aligned to the clock, as Beam's ``FixedWindows``), runs
  that window's archives through one bounded pipeline. It stops on SIGINT/SIGTERM after
  writing the windows that hold archives already found, or after ``--stop-after-idle``
  seconds without a new archive.
- On any other runner (``--preset=dataflow-streaming``) it submits the standard unbounded
  graph: ``fileio.MatchContinuously``, state for duplicates, ``FixedWindows``.

Either way the ledger in the manifest parts says which archives are in, so a restart takes
only what is new.
"""
import logging
import math
import signal
import threading
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions

from pipelines.graph import manifest_info
from pipelines.report import write_report
from pipelines.results import BuildResult, counters, summarize
from pipelines.options import make_parser
from pipelines.run_state import delete_dataset, finish
from pipelines.stream_graph import unbounded_graph, window_graph
from runners.direct import RUNNER as LOCAL_RUNNER
from schemas.card import package_version, write_card
from schemas.manifest import MANIFEST_NAME, add_counters, read_counters, read_manifest, write_counters
from schemas.shards import join
from schemas.windows import (archive_item, ledger_of, next_sequence, orphan_files, part_path, read_part, read_parts,
                             rebuild_manifest, window_name)
from transforms.sources.registry import check_source_options
from transforms.sources.watch import ArchiveWatcher
from transforms.write_window import WindowNamer

LOG = logging.getLogger('pipelines.stream')


def is_local(beam_options) -> bool:
    return beam_options.view_as(StandardOptions).runner == LOCAL_RUNNER


def check_stream_options(args, local: bool) -> None:
    """Raises ValueError for what continuous mode cannot do."""
    if args.task != 'continuation':
        raise ValueError(f'--streaming builds --task=continuation only; build --task={args.task} in batch '
                         '(without --streaming)')
    if args.source != 'stems':
        raise ValueError(f'--streaming watches stem archives (--source=stems); --source={args.source} is read '
                         'in batch (without --streaming)')
    if args.fill_missing != 'skip':
        raise ValueError('--fill-missing=reserve draws from the whole corpus; it cannot run with --streaming')
    if args.resume:
        raise ValueError('--resume is for batch builds: a --streaming build always continues the dataset in --output')
    for flag in ('watch_interval', 'window_seconds'):
        if not getattr(args, flag) > 0:
            raise ValueError(f'--{flag.replace("_", "-")} must be a positive number of seconds')
    if args.stop_after_idle is not None and args.stop_after_idle < 0:
        raise ValueError('--stop-after-idle must be 0 or more seconds')
    if args.stop_after_idle is not None and not local:
        raise ValueError('--stop-after-idle stops the local runner; a Dataflow streaming job runs until it is '
                         'drained (gcloud dataflow jobs drain JOB_ID), which writes its open windows')


def prepare_stream_output(args, info: dict) -> list:
    """Checks ``--output`` and readies it; returns the completed parts.

    A dataset of other options, or a batch-built one, is refused unless --overwrite (which
    deletes it). Files of windows that never completed are removed, the work folder is emptied
    and the merged manifest is rebuilt from the parts (a run may have stopped in between).
    """
    root = args.output
    parts = read_parts(root)
    manifest = read_manifest(root) if FileSystems.exists(join(root, MANIFEST_NAME)) else None
    recorded = parts[0]['fingerprint'] if parts else (manifest or {}).get('fingerprint')
    if parts or manifest:
        problem = ('was built in batch' if not parts else
                   f'was built with other options (fingerprint {recorded}, these options give {info["fingerprint"]})'
                   if recorded != info['fingerprint'] else None)
        if problem and not args.overwrite:
            raise ValueError(f'{root} {problem}; use --overwrite to replace it or another --output')
        if problem:
            delete_dataset(root)
            parts = []
    stale = orphan_files(root, parts)
    if stale:
        LOG.warning('removing %d file(s) of windows that did not complete: %s', len(stale), stale[:3])
        FileSystems.delete(stale)
    finish(root)
    summed = read_counters(root)
    if rebuild_manifest(root, info, parts) and summed:
        add_counters(root, read_manifest(root), summed)
    return parts


def window_start(now: float, window_seconds: float) -> float:
    """The start of the fixed window (aligned to the epoch, as FixedWindows) holding ``now``."""
    return math.floor(now / window_seconds) * window_seconds


class StreamDriver:
    """The local driver: polls, collects archives into clock-aligned windows, runs each window."""

    def __init__(self, args, beam_options, task, info: dict, parts: list, clock=time.time):
        self.args, self.beam_options, self.task, self.info = args, beam_options, task, info
        taken, self.known = ledger_of(parts)
        self.watcher = ArchiveWatcher(args.input, taken)
        self.sequence = next_sequence(parts)
        self.clock = clock
        self.pending = {}            # window start -> [(path, size, mtime)]
        self.stop = threading.Event()
        self.written = []            # parts written by this run
        self.metrics = {}

    def run(self) -> list:
        """Runs until stopped; returns the parts written."""
        last_activity = self.clock()
        while True:
            stopping = self.stop.is_set()
            if not stopping:
                now = self.clock()
                found = self.watcher.poll()
                if found:
                    start = window_start(now, self.args.window_seconds)
                    self.pending.setdefault(start, []).extend(found)
                    LOG.info('%d archive(s) taken into the window starting %s: %s', len(found),
                             time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start)), [f[0] for f in found])
                if self.pending or self.watcher.waiting:
                    last_activity = now
            for start in sorted(self.pending):
                if stopping or start + self.args.window_seconds <= self.clock():
                    self.run_window(start, self.pending.pop(start))
                    last_activity = self.clock()
            if stopping or self._idle_for(last_activity) >= self._idle_limit():
                return self.written
            self.stop.wait(self._wait(last_activity))

    def _idle_limit(self) -> float:
        return math.inf if self.args.stop_after_idle is None else self.args.stop_after_idle

    def _idle_for(self, last_activity: float) -> float:
        return -1 if self.pending or self.watcher.waiting else self.clock() - last_activity

    def _wait(self, last_activity: float) -> float:
        """Seconds until the next poll, window end or idle stop, whichever is first."""
        now = self.clock()
        waits = [self.args.watch_interval]
        waits += [start + self.args.window_seconds - now for start in self.pending]
        if self.args.stop_after_idle is not None:
            waits.append(last_activity + self.args.stop_after_idle - now)
        return max(0.01, min(waits))

    def run_window(self, start: float, found: list) -> str:
        """Runs one window's archives through the build; returns its part's path."""
        namer = WindowNamer(self.sequence, start)
        name = window_name(self.sequence, start)
        LOG.info('window %s: %d archive(s)', name, len(found))
        pipeline = beam.Pipeline(options=self.beam_options)
        window_graph(pipeline, self.args, self.task, self.info, [archive_item(*f) for f in found], self.known, namer)
        result = pipeline.run()
        result.wait_until_finish()
        part = read_part(self.args.output, name)
        for archive in part['archives']:
            if archive['song_id'] and not archive['duplicate_of']:
                self.known.setdefault(archive['song_id'], archive['path'])
        window_metrics = counters(result)
        self._add_counters(window_metrics)
        finish(self.args.output)
        self.sequence += 1
        self.written.append(part_path(name))
        print(window_line(part), flush=True)
        return part_path(name)

    def _add_counters(self, window_metrics: dict) -> None:
        """This run's counters, the dataset's counters.json (the sum over its windows) and the
        manifest's ``counters`` (the dataset counters of that sum)."""
        dataset = read_counters(self.args.output) or {}
        for name, value in window_metrics.items():
            self.metrics[name] = self.metrics.get(name, 0) + value
            dataset[name] = dataset.get(name, 0) + value
        write_counters(self.args.output, dataset)
        manifest = add_counters(self.args.output, read_manifest(self.args.output), dataset)
        write_card(self.args.output, manifest, vars(make_parser().parse_args([])), package_version())  # every window


def window_line(part: dict) -> str:
    examples = {split: stats['examples'] for split, stats in part['splits'].items()}
    return (f'window {part["window"]}: {len(part["archives"])} archive(s): {part["ingested"]} ingested, '
            f'{part["duplicates"]} duplicate(s) skipped, {part["failed"]} unreadable; examples {examples}; '
            f'errors {part["errors"]["total"]} -> {part_path(part["window"])}')


def _install_stop_signals(stop: threading.Event) -> dict:
    """SIGINT/SIGTERM set ``stop`` (the current window is finished first); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt(f'signal {signum} again: aborting')
        LOG.warning('signal %d: finishing the windows in progress, then stopping (again to abort)', signum)
        stop.set()
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def unbounded_pipeline(args, beam_options, task, parts: list, runner=None) -> beam.Pipeline:
    """The standard streaming pipeline (Dataflow), built but not run. ``runner``: instead of the
    options' runner (whose checks, for Dataflow, look at the --temp_location bucket)."""
    beam_options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(runner=runner, options=beam_options)
    taken, known = ledger_of(parts)
    unbounded_graph(pipeline, args, task, manifest_info(args, task), taken, known, WindowNamer(next_sequence(parts)))
    return pipeline


def run_stream(args, beam_options, task) -> BuildResult:
    """Runs continuous mode (see the module's doc); returns the dataset's manifest and this run's
    counters when the local driver stops, or right after submitting an unbounded job."""
    local = is_local(beam_options)
    check_stream_options(args, local)
    check_source_options(args)
    info = manifest_info(args, task)
    window_graph(beam.Pipeline(runner=LOCAL_RUNNER, options=beam_options), args, task, info, [], {},
                 WindowNamer(1, 0))    # checks every option before the output is touched
    parts = prepare_stream_output(args, info)
    if task.random_codec_seed() is not None:
        LOG.warning('Building with RANDOM codec weights (seed %d): the tokens are not a real codec\'s.',
                    task.random_codec_seed())
    if not local:
        result = unbounded_pipeline(args, beam_options, task, parts).run()
        print(f'streaming job submitted ({type(result).__name__}): watching {args.input} -> {args.output}')
        return BuildResult(output=args.output, manifest={}, counters={})
    beam_options.view_as(StandardOptions).streaming = False    # each window is a bounded pipeline
    if '://' not in args.input and not FileSystems.exists(args.input):
        LOG.warning('%s does not exist (yet): watching for it', args.input)
    driver = StreamDriver(args, beam_options, task, info, parts)
    print(f'watching {args.input} every {args.watch_interval:g} s, windows of {args.window_seconds:g} s '
          f'-> {args.output} ({len(parts)} window(s) already in)', flush=True)
    previous = _install_stop_signals(driver.stop)
    try:
        written = driver.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    manifest = read_manifest(args.output) if FileSystems.exists(join(args.output, MANIFEST_NAME)) else None
    print(f'stopped: {len(written)} window(s) written by this run')
    if manifest:
        for line in summarize(manifest, read_counters(args.output) or {}, args.output, task):
            print(line)
        if args.report:
            print(f'report: {write_report(args.output)}')
    return BuildResult(output=args.output, manifest=manifest or {}, counters=driver.metrics)
