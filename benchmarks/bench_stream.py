"""Continuous mode's latency: from an archive landing in the watched folder to its shards being
readable (listed in manifest.json, the entry point readers use).

Run: .venv/bin/python -m benchmarks.bench_stream [--window-seconds 300] [--watch-interval 30]
         [--archives 3] [--spacing 100]
Starts ``python -m pipelines.build --streaming`` on an empty folder (demo songs and demo
options, random codec weights), moves demo archives in one by one (a rename, so each lands
whole), and prints each archive's latency split into the wait for its window to close and
the window's processing. Prints figures only; nothing here asserts.
"""
import argparse
import calendar
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from pipelines.demo import make_demo_corpus
from schemas.ids import stable_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_FLAGS = ['--codec-weights=random', '--target-stem=guitar', '--assortments=4', '--augmentations=1']


def _song_id(path: str) -> str:
    with open(path, 'rb') as f:
        return stable_id('song', hashlib.sha256(f.read()).hexdigest())


def _listed(output: str) -> dict:
    """{song_id: (window, window start)} of every song in a window manifest.json lists."""
    try:
        with open(os.path.join(output, 'manifest.json')) as f:
            parts = json.load(f)['streaming']['parts']
    except (OSError, ValueError, KeyError):
        return {}
    found = {}
    for relative in parts:
        with open(os.path.join(output, relative)) as f:
            part = json.load(f)
        start = calendar.timegm(time.strptime(part['start_utc'], '%Y-%m-%dT%H:%M:%SZ'))
        found.update({a['song_id']: (part['window'], start) for a in part['archives'] if a['song_id']})
    return found


def measure(window_seconds: float, watch_interval: float, archives: int, spacing: float, work: str) -> list:
    staging, watched, output = (os.path.join(work, name) for name in ('staging', 'in', 'out'))
    os.makedirs(watched)
    songs = make_demo_corpus(staging)[:archives]
    command = [sys.executable, '-m', 'pipelines.build', '--streaming', f'--input={watched}', f'--output={output}',
               f'--window-seconds={window_seconds}', f'--watch-interval={watch_interval}',
               f'--stop-after-idle={window_seconds + 3 * watch_interval + 60}'] + DEMO_FLAGS
    log = os.path.join(work, 'build.log')
    with open(log, 'w') as out:
        build = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    while build.poll() is None and 'watching' not in open(log).read():
        time.sleep(0.2)
    landed, results, due = {}, {}, [time.time() + 1.0 + i * spacing for i in range(len(songs))]
    while len(results) < len(songs) and build.poll() is None:
        if len(landed) < len(songs) and time.time() >= due[len(landed)]:
            song = songs[len(landed)]
            target = os.path.join(watched, os.path.relpath(song, staging))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(song, target)
            landed[_song_id(target)] = (os.path.relpath(target, watched), time.time())
        for song_id, (window, start) in _listed(output).items():
            if song_id in landed and song_id not in results:
                results[song_id] = (window, start, time.time())
        time.sleep(0.1)
    build.terminate()
    build.wait()
    return [(name, at, *results[song_id]) for song_id, (name, at) in landed.items() if song_id in results]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--window-seconds', type=float, default=300.0, help='Default: 300 (the build\'s default).')
    parser.add_argument('--watch-interval', type=float, default=30.0, help='Default: 30 (the build\'s default).')
    parser.add_argument('--archives', type=int, default=3, help='Archives moved in, one by one. Default: 3.')
    parser.add_argument('--spacing', type=float, default=100.0, help='Seconds between two archives. Default: 100.')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-stream-') as work:
        rows = measure(args.window_seconds, args.watch_interval, args.archives, args.spacing, work)
    print(f'window {args.window_seconds:g} s, watch interval {args.watch_interval:g} s, demo songs (10.5 s, '
          f'guitar, 4 assortments, 1 augmentation), random codec weights:')
    for name, landed, window, start, readable in rows:
        closed = start + args.window_seconds
        print(f'  {name}: readable {readable - landed:.1f} s after landing (window {window}: '
              f'{max(0.0, closed - landed):.1f} s waiting for it to close, {readable - max(closed, landed):.1f} s '
              'from its close to the manifest listing it)')
    if rows:
        latencies = [readable - landed for _, landed, _, _, readable in rows]
        print(f'  mean {sum(latencies) / len(latencies):.1f} s, max {max(latencies):.1f} s over {len(rows)} archive(s)')


if __name__ == '__main__':
    main()
