"""The streaming reader's throughput and the verifier's wall time on the demo dataset.

Run: .venv/bin/python -m benchmarks.bench_reader [--dataset DIR] [--samples N]
Builds the demo dataset into a temporary folder unless --dataset names a built one.
Prints figures only; nothing here asserts.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from torch.utils.data import DataLoader

from schemas.reader import PadCollate, describe, open_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_reader(dataset: str, samples: int) -> None:
    """Reads one long epoch (the train shards listed over and over) so that start-up costs vanish."""
    info = describe(dataset, 'train')
    urls = list(info.urls) * max(1, -(-samples // max(1, info.examples)))
    total = len(urls) // len(info.urls) * info.examples

    def one_worker():
        reader = open_dataset(urls, rank=0, world_size=1)
        return DataLoader(reader, batch_size=32, num_workers=1, collate_fn=PadCollate(2048))

    for name, make in (('in process', lambda: open_dataset(urls, rank=0, world_size=1)),
                       ('DataLoader, 1 worker, batch 32', one_worker)):
        start, count = time.perf_counter(), 0
        for item in make():
            count += len(item['example_id']) if isinstance(item['example_id'], list) else 1
        wall = time.perf_counter() - start
        print(f'reader ({name}): {count / wall:.0f} samples/s ({count} of {total} samples in {wall:.1f} s, '
              f'local shards, shuffle buffer 1000, continuation pairs)')


def bench_verify(dataset: str) -> None:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, '-m', 'pipelines.verify', dataset], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    total = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-200:]
    print(f'verify (python -m pipelines.verify, process start included): {wall:.1f} s wall; {total}')
    from pipelines.verify import run_checks, scan_dataset
    start = time.perf_counter()
    run_checks(scan_dataset(dataset))
    print(f'verify (scan and checks alone, in process): {time.perf_counter() - start:.2f} s')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--dataset', default=None, help='A built dataset (default: build the demo in a temp folder).')
    parser.add_argument('--samples', type=int, default=5000, help='Samples to read per figure. Default: 5000.')
    args = parser.parse_args()
    dataset = args.dataset
    if dataset is None:
        from pipelines.build import run
        work = tempfile.mkdtemp(prefix='bench-reader-')
        dataset = run(['--demo', f'--input={work}/corpus', f'--output={work}/dataset']).output
    bench_reader(dataset, args.samples)
    bench_verify(dataset)


if __name__ == '__main__':
    main()
