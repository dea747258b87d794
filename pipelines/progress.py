"""A progress line on stderr while a build runs, from what the run writes to its work folder.

Render records each song's waveforms and their windows in ``_work/plans/<song>.json``;
EncodeChunks stores each encoded segment as ``_work/codes/<song>--<waveform>--<first window>-<windows>.npz``. Reading
both works for every runner and worker count (and for remote outputs) without live metrics.
"""
import json
import sys
import threading
import time

from apache_beam.io.filesystems import FileSystems

from pipelines.run_state import work_path


def _names(pattern: str) -> list:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except (OSError, IOError, ValueError):   # nothing written yet
        return []


def progress_line(root: str, chunk_seconds: float, elapsed: float) -> str:
    if chunk_seconds is None:          # a task without windows (descriptors) records no plans or codes
        return f'progress: {elapsed:.0f} s elapsed'
    plans = {}
    for path in _names(work_path(root, 'plans', '*.json')):
        with FileSystems.open(path) as handle:
            plans[path.rsplit('/', 1)[-1][:-5]] = json.loads(handle.read().decode('utf-8'))
    windows = {}
    for path in _names(work_path(root, 'codes', '*.npz')):
        song, waveform, span = path.rsplit('/', 1)[-1][:-4].split('--', 2)
        key = (song, waveform)
        windows[key] = windows.get(key, 0) + int(span.rsplit('-', 1)[-1])
    encoded = {}
    for (song, waveform), count in windows.items():
        if count >= plans.get(song, {}).get(waveform, float('inf')):
            encoded.setdefault(song, set()).add(waveform)
    planned_windows = sum(sum(p.values()) for p in plans.values())
    done_windows = sum(min(count, plans.get(song, {}).get(w, 0)) for (song, w), count in windows.items())
    songs_done = sum(1 for song, p in plans.items() if set(p) <= encoded.get(song, set()))
    seconds = done_windows * chunk_seconds
    rate = seconds / elapsed if elapsed > 0 else 0.0
    eta = (planned_windows - done_windows) * chunk_seconds / rate if rate > 0 else float('nan')
    return (f'progress: {songs_done}/{len(plans)} songs planned so far are encoded, '
            f'{sum(len(w) for w in encoded.values())} waveforms, {seconds:.0f} s of audio '
            f'({rate:.2f} s/s), {elapsed:.0f} s elapsed, ETA for what is planned {eta:.0f} s')


class ProgressReporter:
    """Prints ``progress_line`` every ``interval_s`` seconds on stderr until stopped."""

    def __init__(self, root: str, chunk_seconds: float, interval_s: float = 10.0, stream=None):
        self.root = root
        self.chunk_seconds = chunk_seconds
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            print(progress_line(self.root, self.chunk_seconds, time.monotonic() - self._start),
                  file=self.stream, flush=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False
