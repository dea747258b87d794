"""The streaming reader's throughput and the verifier's wall time on the demo dataset.

Run: .venv/bin/python -m benchmarks.bench_reader [--dataset DIR] [--seconds S]
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

from schemas.reader import open_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rate(make_batches, seconds: float):
    """(samples, wall) of whole epochs read until at least ``seconds`` have passed."""
    samples, epoch, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in make_batches(epoch):
            samples += len(batch['example_id']) if isinstance(batch['example_id'], list) else 1
        epoch += 1
    return samples, time.perf_counter() - start


def bench_reader(dataset: str, seconds: float) -> None:
    def in_process(epoch):
        reader = open_dataset(dataset, 'train', rank=0, world_size=1, epoch=epoch)
        return iter(reader)

    def one_worker(epoch):
        reader = open_dataset(dataset, 'train', rank=0, world_size=1, epoch=epoch)
        return DataLoader(reader, batch_size=32, num_workers=1, collate_fn=reader.collate)

    for name, make in (('in process', in_process), ('DataLoader, 1 worker, batch 32', one_worker)):
        samples, wall = _rate(make, seconds)
        print(f'reader ({name}): {samples / wall:.0f} samples/s ({samples} samples in {wall:.1f} s, '
              f'local shards, shuffle buffer 1000)')


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
    parser.add_argument('--seconds', type=float, default=5.0, help='Read for at least this long per figure.')
    args = parser.parse_args()
    dataset = args.dataset
    if dataset is None:
        from pipelines.build import run
        work = tempfile.mkdtemp(prefix='bench-reader-')
        dataset = run(['--demo', f'--input={work}/corpus', f'--output={work}/dataset']).output
    bench_reader(dataset, args.seconds)
    bench_verify(dataset)


if __name__ == '__main__':
    main()
