"""Progress on stderr while a build runs (and while ``pipelines.verify`` hashes), from what the
run writes to its work folder.

The build records the number of songs its source found in ``_work/songs.json`` before the first
one is decoded; Render records each song's waveforms, their windows and its example count in
``_work/plans/<song>.json``; EncodeChunks stores each encoded segment as
``_work/codes/<song>--<waveform>--<first window>-<windows>.npz``. Reading these works for every
runner and worker count (and for remote outputs) without live metrics. On a terminal the
progress is a tqdm bar; otherwise a line every ``--progress-seconds``.
"""
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from schemas.shards import work_path, write_atomic

SONGS_FILE = 'songs.json'
RATE_WINDOW_S = 60.0     # the encode rate is measured over the last minute


def _names(pattern: str) -> list:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except (OSError, IOError, ValueError):   # nothing written yet
        return []


def _read_json(path: str):
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode('utf-8'))


def write_song_count(count: int, root: str) -> int:
    """Records how many songs the source found (a build step, before any song is decoded)."""
    write_atomic(work_path(root, SONGS_FILE), json.dumps({'songs': int(count)}).encode('utf-8'))
    return count


@dataclass(frozen=True)
class Progress:
    songs_total: Optional[int]    # None until the source has counted (or for a streaming build)
    songs_planned: int
    songs_done: int               # every waveform of the song is encoded (or it had none)
    examples_ready: int           # examples of the songs done
    encoded_seconds: float        # window audio encoded so far
    remaining_seconds: Optional[float]   # window audio left: planned, plus an estimate for unplanned songs


def read_progress(root: str, chunk_seconds: float) -> Progress:
    total = None
    songs_file = work_path(root, SONGS_FILE)
    if _names(songs_file):
        total = int(_read_json(songs_file)['songs'])
    plans, examples = {}, {}
    for path in _names(work_path(root, 'plans', '*.json')):
        song = path.rsplit('/', 1)[-1][:-5]
        document = _read_json(path)
        plans[song] = document.get('waveforms', {})
        examples[song] = int(document.get('examples', 0))
    windows = {}
    for path in _names(work_path(root, 'codes', '*.npz')):
        song, waveform, span = path.rsplit('/', 1)[-1][:-4].split('--', 2)
        windows[(song, waveform)] = windows.get((song, waveform), 0) + int(span.rsplit('-', 1)[-1])
    encoded = {}
    for (song, waveform), count in windows.items():
        if count >= plans.get(song, {}).get(waveform, float('inf')):
            encoded.setdefault(song, set()).add(waveform)
    done = [song for song, plan in plans.items() if set(plan) <= encoded.get(song, set())]
    planned_windows = sum(sum(p.values()) for p in plans.values())
    done_windows = sum(min(count, plans.get(song, {}).get(w, 0)) for (song, w), count in windows.items())
    remaining = (planned_windows - done_windows) * chunk_seconds
    if total is not None and total > len(plans):
        remaining = remaining + (total - len(plans)) * planned_windows * chunk_seconds / len(plans) if plans else None
    return Progress(songs_total=total, songs_planned=len(plans), songs_done=len(done),
                    examples_ready=sum(examples[s] for s in done), encoded_seconds=done_windows * chunk_seconds,
                    remaining_seconds=remaining)


def _duration(seconds) -> str:
    if seconds is None or seconds != seconds:
        return 'unknown'
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m' if seconds >= 3600 else (
        f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s')


def describe(progress: Progress, rate: float, elapsed: float) -> str:
    """'3/10 songs done (5 planned), 40 examples ready, 120 s of audio encoded (2.10 s/s over the
    last minute), 1m00s elapsed, ETA 2m20s'."""
    total = '?' if progress.songs_total is None else progress.songs_total
    eta = progress.remaining_seconds / rate if rate > 0 and progress.remaining_seconds is not None else None
    return (f'{progress.songs_done}/{total} songs done ({progress.songs_planned} planned), '
            f'{progress.examples_ready} examples ready, {progress.encoded_seconds:.0f} s of audio encoded '
            f'({rate:.2f} s/s over the last minute), {_duration(elapsed)} elapsed, ETA {_duration(eta)}')


class RateMeter:
    """Encoded audio seconds per wall second over the last RATE_WINDOW_S."""

    def __init__(self):
        self.samples = collections.deque()

    def add(self, now: float, seconds: float) -> float:
        self.samples.append((now, seconds))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        (t0, s0), (t1, s1) = self.samples[0], self.samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


def _bar(stream, total, unit: str, desc: str):
    """A tqdm bar on a terminal, else None (lines instead)."""
    if not getattr(stream, 'isatty', lambda: False)():
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit=unit, desc=desc, file=stream, dynamic_ncols=True, leave=True)


class ProgressReporter:
    """Shows the build's progress every ``interval_s`` seconds on stderr until stopped."""

    def __init__(self, root: str, chunk_seconds: float, interval_s: float = 10.0, stream=None):
        self.root = root
        self.chunk_seconds = chunk_seconds
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()
        self._rate = RateMeter()
        self._bar = None

    def tick(self) -> str:
        elapsed = time.monotonic() - self._start
        if self.chunk_seconds is None:     # a task without windows (descriptors) records no plans or codes
            return f'{_duration(elapsed)} elapsed'
        progress = read_progress(self.root, self.chunk_seconds)
        rate = self._rate.add(elapsed, progress.encoded_seconds)
        text = describe(progress, rate, elapsed)
        if self._bar is not None:
            self._bar.total = progress.songs_total
            self._bar.n = progress.songs_done
            self._bar.set_postfix_str(text.split(', ', 1)[1], refresh=True)
        return text

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            text = self.tick()
            if self._bar is None:
                print(f'progress: {text}', file=self.stream, flush=True)

    def __enter__(self):
        self._bar = _bar(self.stream, None, 'song', 'songs') if self.chunk_seconds is not None else None
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._bar.close()
        return False


class HashProgress:
    """``pipelines.verify``'s progress while it reads files: a tqdm bar over bytes on a terminal,
    else a line at most every ``interval_s`` seconds."""

    def __init__(self, files: int, total_bytes: int, stream=None, interval_s: float = 10.0):
        self.files, self.total_bytes = files, total_bytes
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.done_files = self.done_bytes = 0
        self._start = self._last = time.monotonic()
        self._bar = _bar(self.stream, total_bytes, 'B', 'hashing')
        if self._bar is not None:
            self._bar.unit_scale = True

    def update(self, nbytes: int) -> None:
        self.done_files += 1
        self.done_bytes += nbytes
        if self._bar is not None:
            self._bar.update(nbytes)
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s or self.done_files == self.files:
            self._last = now
            print(f'verify: {self.done_files}/{self.files} files read, {self.done_bytes / 1e6:.1f} of '
                  f'{self.total_bytes / 1e6:.1f} MB, {_duration(now - self._start)} elapsed',
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
