"""How fast ``python -m pipelines.query`` answers on a million-row descriptor table.

Writes a synthetic descriptors dataset under /tmp with the real shard writers, stats and
manifest: ``--rows`` frames (default 1,000,000, about 6.5 hours of audio at hop 1024) in
blocks of 1 to 6 minutes, smooth random descriptors around the statistics of real ones, plus
one planted block that is the real descriptors of a synthesized guitar stem. Clips of 1, 3
and 10 s cut out of that stem at a frame-aligned offset are then queried:

- end to end through the CLI (a new Python process: start, imports, manifest, memory-mapped
  index, decoding and describing the clip, the scan, printing): wall time of the first call and
  the median of repeats, and the median CPU time (user + system; other work on the machine
  inflates wall time, hardly CPU time);
- in process, split into opening the index, reading the clip and the search itself;
- with ``--exact`` (every clip frame at every start) for comparison.

It prints figures and whether the planted segment came first; it asserts nothing (not a test).
``python -m benchmarks.bench_query [--rows N] [--keep]``.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# In process as in the CLI (pipelines/query.py): one BLAS thread, set before numpy loads.
for _variable in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_variable, '1')

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from pipelines.query import load_clip, search  # noqa: E402
from schemas.descriptor_index import INDEX_EXPORT, STATS_PATH, open_index, stats_bytes, stats_document  # noqa: E402
from schemas.descriptors import write_index_part  # noqa: E402
from schemas.manifest import ExportedFile, build_manifest, write_manifest  # noqa: E402
from schemas.descriptors import DescriptorBlock, DescriptorMeta  # noqa: E402
from schemas.shards import write_atomic  # noqa: E402
from schemas.descriptor_columns import COLUMN, COLUMNS, add_moments, block_moments, index_features  # noqa: E402
from transforms.descriptor_features import describe, settings  # noqa: E402
from transforms.synth import synth_stems  # noqa: E402

RATE, HOP = 44100, 1024
SHARD_ROWS = 250_000
PLANTED = ('planted-song', 'guitar')
CLIP_OFFSET_FRAME = 200


def synthetic_descriptors(rng, frames: int, mean: np.ndarray, std: np.ndarray, width: int = 8) -> np.ndarray:
    """Smooth random descriptors [frames, 44] (white noise averaged over ``width`` frames, so
    neighbouring frames are alike as in music) with the given per-column mean and std."""
    noise = rng.standard_normal((frames + width, len(COLUMNS)))
    summed = np.cumsum(noise, axis=0)
    smooth = ((summed[width:] - summed[:-width]) / np.sqrt(width)).astype(np.float32)
    values = mean + smooth * std
    values[:, COLUMN['rms']] = np.abs(values[:, COLUMN['rms']])
    values[:, COLUMN['spectral_flatness']] = np.clip(values[:, COLUMN['spectral_flatness']], 0, 1)
    unvoiced = smooth[:, COLUMN['f0']] < 0
    values[:, COLUMN['f0']] = np.where(unvoiced, np.nan, np.abs(values[:, COLUMN['f0']]) + 80)
    return values.astype(np.float32)


def block(song_id: str, stem: str, split: str, features: np.ndarray) -> DescriptorBlock:
    meta = DescriptorMeta(example_id=f'{song_id}-{stem}', song_id=song_id, stem=stem, split=split, artist='Bench',
                          title=song_id, source='bench', sample_rate_hz=RATE, hop_length=HOP,
                          num_samples=len(features) * HOP, duration_seconds=len(features) * HOP / RATE)
    return DescriptorBlock(meta=meta, features=features)


def make_index(root: str, rows: int, planted_audio: np.ndarray, seed: int = 0) -> None:
    """The synthetic dataset's index: parts of at most SHARD_ROWS rows, the planted block in the first."""
    rng = np.random.default_rng(seed)
    real = describe(planted_audio, RATE, HOP)
    mean, std = np.nanmean(real, axis=0), np.nanstd(real, axis=0) + 1e-3
    mean[COLUMN['f0']], std[COLUMN['f0']] = 200.0, 100.0
    shards, written = [[block(*PLANTED, 'train', real)]], len(real)
    while written < rows:
        frames = int(min(rows - written, rng.integers(2600, 15500)))
        if sum(b.frames for b in shards[-1]) + frames > SHARD_ROWS:
            shards.append([])
        shards[-1].append(block(f'song{written:08d}', ('drums', 'bass', 'guitar', 'piano', 'mix')[written % 5],
                                'train', synthetic_descriptors(rng, frames, mean, std)))
        written += frames
    moments = None
    for blocks in shards:
        for b in blocks:
            m = block_moments(index_features(b.features))
            moments = m if moments is None else add_moments(moments, m)
    document = stats_document({'train': moments}, settings(RATE, HOP))
    size, sha256 = write_atomic(os.path.join(root, STATS_PATH), stats_bytes(document))
    exported = [ExportedFile(INDEX_EXPORT, STATS_PATH, size, sha256)]
    for index, blocks in enumerate(shards):     # the query reads the index, not the Parquet table
        exported += write_index_part(root, 'train', index, blocks, document)
    info = {'task': 'descriptors', 'descriptors': settings(RATE, HOP)}
    split_stats = {'train': {'songs': sum(len(s) for s in shards), 'examples': sum(len(s) for s in shards),
                             'audio_seconds': rows * HOP / RATE}}
    write_manifest(root, build_manifest(info, [], split_stats, {}, exported))


def cli_seconds(root: str, clip: str, repeats: int, *extra) -> tuple:
    """Wall and CPU (user + system) seconds of each CLI call."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, '-m', 'pipelines.query', '--index', root, '--audio', clip, '-k', '10',
                        '--json', *extra], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def in_process(root: str, clip: str, repeats: int, exact: bool = False) -> dict:
    phases = {'open_index': [], 'load_clip': [], 'search': []}
    for _ in range(repeats):
        start = time.perf_counter()
        index = open_index(root)
        opened = time.perf_counter()
        audio = load_clip(clip, RATE)
        loaded = time.perf_counter()
        matches = search(index, audio, 10, exact=exact)
        done = time.perf_counter()
        for name, seconds in zip(phases, (opened - start, loaded - opened, done - loaded)):
            phases[name].append(seconds)
    return dict({name: statistics.median(v) for name, v in phases.items()}, top=matches[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rows', type=int, default=1_000_000)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--keep', action='store_true', help='Keep the synthetic dataset (its path is printed).')
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix='stemforge-bench-query-')
    try:
        guitar = synth_stems(7, 60.0, RATE)['guitar']
        start = time.perf_counter()
        make_index(root, args.rows, guitar)
        index = open_index(root)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)
        print(f'synthetic index: {index.rows} rows in {len(index.parts)} parts, {size / 1e6:.0f} MB, '
              f'written in {time.perf_counter() - start:.1f} s ({root})')
        print(f'machine: {os.cpu_count()} CPU(s), numpy {np.__version__}, load average '
              f'{os.getloadavg()[0]:.2f} (other work on the machine inflates wall times, not CPU times)')
        for seconds in (1.0, 3.0, 10.0):
            clip = os.path.join(root, f'clip-{seconds:g}s.wav')
            offset = CLIP_OFFSET_FRAME * HOP
            sf.write(clip, guitar[offset:offset + int(seconds * RATE)], RATE, subtype='FLOAT')
            cli, cpu = cli_seconds(root, clip, args.repeats)
            timed = in_process(root, clip, args.repeats)
            top = timed['top']
            found = (top.song_id, top.stem, top.sample_offset) == (*PLANTED, offset)
            print(f'clip {seconds:>4g} s: CLI end to end first {cli[0]:.3f} s, median {statistics.median(cli):.3f} s '
                  f'wall ({statistics.median(cpu):.3f} s CPU); '
                  f'in process: open index {timed["open_index"] * 1e3:.1f} ms, read clip '
                  f'{timed["load_clip"] * 1e3:.1f} ms, search {timed["search"] * 1e3:.0f} ms; '
                  f'planted segment first: {found} (distance {top.distance:.4f})')
            if seconds <= 3.0:
                exact = in_process(root, clip, max(1, args.repeats // 2), exact=True)
                print(f'          --exact: search {exact["search"] * 1e3:.0f} ms; planted segment first: '
                      f'{(exact["top"].song_id, exact["top"].sample_offset) == (PLANTED[0], offset)}')
        print(f'load average at the end: {os.getloadavg()[0]:.2f}')
    finally:
        if args.keep:
            print(f'kept {root}')
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
