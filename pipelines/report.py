"""See what a dataset holds: ``python -m pipelines.report <dataset>``.

Writes ``report.md`` and ``report-*.png`` plots next to the manifest (local, ``s3://`` or
``gs://``): hours and examples per split and per target stem, the distribution of
context-stem counts and assortments, windows dropped as silent (from the build's
``counters.json``), errors per stage, histograms of augmentation parameters (when the
examples carry ``augmentation`` metadata), and per-codebook token usage with each
codebook's utilisation and entropy, a codec-health signal: a healthy codec uses most of
its codes with an entropy near ``log2(codebook_size)``; a broken one collapses onto a few.
The build runs it after writing the dataset when given ``--report``.
"""
import argparse
import io
import logging
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from pipelines.flags import parse_tool_args
from schemas.manifest import read_counters, read_manifest
from schemas.shards import join, write_atomic
from schemas.webdataset import read_samples

REPORT_NAME = 'report.md'
PLOT_NAMES = {'splits': 'report-splits.png', 'context': 'report-context.png',
              'augmentation': 'report-augmentation.png', 'tokens': 'report-token-usage.png'}
SILENT_COUNTER = 'RenderFn.windows_silent'


@dataclass
class Tally:
    """What the report counts, accumulated over every example of the dataset."""
    examples: Counter = field(default_factory=Counter)                  # (split, target_stem) -> n
    seconds: Counter = field(default_factory=Counter)                   # (split, target_stem) -> s
    context_counts: Counter = field(default_factory=Counter)            # stems in the context -> n
    assortments: Counter = field(default_factory=Counter)               # assortment index -> n
    augmentation: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))
    augmented: int = 0
    distortion: Counter = field(default_factory=Counter)                # effect name -> n
    tokens: Dict[str, np.ndarray] = field(default_factory=dict)         # 'context'/'target' -> [codebooks, size]

    def add(self, meta: dict, codes: Dict[str, np.ndarray], codebook_size: int) -> None:
        key = (meta.get('split'), meta.get('target_stem'))
        self.examples[key] += 1
        self.seconds[key] += float(meta.get('duration_seconds') or 0.0)
        self.context_counts[len(meta.get('context_stems') or ())] += 1
        self.assortments[meta.get('assortment')] += 1
        augmentation = meta.get('augmentation')
        if isinstance(augmentation, dict):
            self.augmented += 1
            for name, value in augmentation.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.augmentation[name].append(float(value))
        for step in meta.get('distortion') or ():
            self.distortion[step.get('name') if isinstance(step, dict) else str(step)] += 1
        for kind, array in codes.items():
            counts = np.stack([np.bincount(row.astype(np.int64), minlength=codebook_size)[:codebook_size]
                               for row in array])
            self.tokens[kind] = counts if kind not in self.tokens else self.tokens[kind] + counts


def tally_dataset(root: str, manifest: dict) -> Tally:
    """Reads every WebDataset sample of ``root`` once."""
    tally = Tally()
    size = manifest['codec']['codebook_size']
    for split, stats in sorted(manifest['splits'].items()):
        for shard in stats['shards'].get('webdataset', []):
            for sample in read_samples(join(root, shard['path'])):
                codes = {kind: np.clip(sample[f'{kind}.npy'], 0, size - 1) for kind in ('context', 'target')}
                tally.add(dict(sample['json'], split=sample['json'].get('split', split)), codes, size)
    return tally


def codebook_health(counts: np.ndarray) -> List[dict]:
    """Per codebook: codes used, utilisation (used / size) and entropy in bits (and over its maximum)."""
    rows = []
    for index, row in enumerate(counts):
        total = row.sum()
        p = row[row > 0] / total if total else np.zeros(0)
        entropy = float(-(p * np.log2(p)).sum()) if total else 0.0
        rows.append({'codebook': index, 'used': int((row > 0).sum()), 'utilisation': float((row > 0).mean()),
                     'entropy_bits': entropy, 'entropy_fraction': entropy / math.log2(len(row))})
    return rows


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('the report draws with matplotlib: pip install matplotlib') from e
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, root: str, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100, metadata={'Software': None})
    _pyplot().close(fig)
    write_atomic(join(root, name), buf.getvalue())
    return name


def plot_splits(tally: Tally, root: str) -> str:
    plt = _pyplot()
    splits = sorted({s for s, _ in tally.examples})
    stems = sorted({t for _, t in tally.examples})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(stems))
    for j, stem in enumerate(stems):
        xs = [i + j * width for i in range(len(splits))]
        axes[0].bar(xs, [tally.examples[(s, stem)] for s in splits], width, label=stem)
        axes[1].bar(xs, [tally.seconds[(s, stem)] / 3600 for s in splits], width, label=stem)
    for ax, title in zip(axes, ('examples', 'hours of audio')):
        ax.set_xticks([i + width * (len(stems) - 1) / 2 for i in range(len(splits))], splits)
        ax.set_title(f'{title} per split and target stem')
        ax.legend(fontsize='small')
    return _save(fig, root, PLOT_NAMES['splits'])


def plot_context(tally: Tally, root: str) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, counts, title in ((axes[0], tally.context_counts, 'stems in the context'),
                              (axes[1], tally.assortments, 'assortment index')):
        keys = sorted(k for k in counts if k is not None)
        ax.bar([str(k) for k in keys], [counts[k] for k in keys])
        ax.set_title(f'examples by {title}')
    return _save(fig, root, PLOT_NAMES['context'])


def plot_augmentation(tally: Tally, root: str) -> str:
    plt = _pyplot()
    names = sorted(tally.augmentation)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.hist(tally.augmentation[name], bins=20)
        ax.set_title(name)
    fig.suptitle(f'augmentation parameters ({tally.augmented} examples)')
    return _save(fig, root, PLOT_NAMES['augmentation'])


def plot_tokens(tally: Tally, root: str, codebook_size: int) -> str:
    plt = _pyplot()
    counts = sum(tally.tokens.values())
    bins = min(codebook_size, 128)
    edges = np.linspace(0, codebook_size, bins + 1)
    fig, axes = plt.subplots(len(counts), 1, figsize=(10, 1.8 * len(counts) + 0.6), squeeze=False)
    for ax, health, row in zip(axes[:, 0], codebook_health(counts), counts):
        ax.stairs(row.reshape(bins, -1).sum(axis=1) if codebook_size % bins == 0 else
                  np.histogram(np.arange(codebook_size), edges, weights=row)[0], edges, fill=True)
        ax.set_ylabel(f'cb {health["codebook"]}')
        ax.set_title(f'codebook {health["codebook"]}: {health["utilisation"]:.0%} of codes used, '
                     f'entropy {health["entropy_bits"]:.2f} of {math.log2(codebook_size):.0f} bits', fontsize='small')
    axes[-1, 0].set_xlabel('code id')
    fig.tight_layout()
    return _save(fig, root, PLOT_NAMES['tokens'])


def _table(header, rows) -> List[str]:
    return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
            + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows] + [''])


def render_markdown(root: str, manifest: dict, tally: Tally, counters, plots: Dict[str, str]) -> str:
    codec = manifest['codec']
    lines = [f'# Dataset report: {root}', '',
             f'Codec `{codec["name"]}`, weights `{codec["weights"]}`: {codec["codebooks"]} codebooks of '
             f'{codec["codebook_size"]} at {codec["frame_rate"]:g} Hz. Totals: {manifest["totals"]["examples"]} '
             f'examples from {manifest["totals"]["songs"]} songs, {manifest["totals"]["audio_seconds"] / 3600:.3f} h.', '']
    if codec['weights'].startswith('random'):
        lines += ['**Random codec weights**: the tokens are for testing the pipeline, not for training.', '']
    lines += ['## Splits', ''] + _table(
        ['split', 'songs', 'examples', 'hours', 'WebDataset shards'],
        [(s, st['songs'], st['examples'], f'{st["audio_seconds"] / 3600:.3f}', len(st['shards'].get('webdataset', [])))
         for s, st in sorted(manifest['splits'].items())])
    lines += ['## Per target stem', ''] + _table(
        ['split', 'target stem', 'examples', 'hours'],
        [(s, t, n, f'{tally.seconds[(s, t)] / 3600:.3f}') for (s, t), n in sorted(tally.examples.items())])
    lines += [f'![examples and hours]({plots["splits"]})', '', '## Context', '']
    lines += _table(['stems in the context', 'examples'], sorted(tally.context_counts.items()))
    lines += _table(['assortment', 'examples'], sorted(tally.assortments.items(), key=lambda kv: str(kv[0])))
    lines += [f'![context stems and assortments]({plots["context"]})', '', '## Dropped and failed', '']
    silent = 'not recorded (no counters.json)' if counters is None else counters.get(SILENT_COUNTER, 0)
    errors = manifest['errors']
    lines += [f'Windows dropped as silent: {silent}.', '', f'Errors: {errors["total"]} (`{errors["path"]}`).', '']
    lines += _table(['stage', 'errors'], sorted(errors['by_stage'].items())) if errors['by_stage'] else []
    lines += ['## Augmentation', '']
    if tally.augmented:
        lines += [f'{tally.augmented} of {sum(tally.examples.values())} examples are augmented variants.', '']
        lines += _table(['parameter', 'min', 'mean', 'max'],
                        [(n, f'{min(v):.3g}', f'{np.mean(v):.3g}', f'{max(v):.3g}') for n, v in
                         sorted(tally.augmentation.items())])
        lines += [f'![augmentation parameters]({plots["augmentation"]})', '']
    else:
        lines += ['No example carries augmentation metadata.', '']
    if tally.distortion:
        lines += _table(['context effect', 'examples'], sorted(tally.distortion.items()))
    lines += ['## Codec health: token usage per codebook', '']
    rows = []
    for kind, counts in sorted(tally.tokens.items()):
        rows += [(kind, h['codebook'], h['used'], f'{h["utilisation"]:.1%}', f'{h["entropy_bits"]:.2f}',
                  f'{h["entropy_fraction"]:.1%}') for h in codebook_health(counts)]
    lines += _table(['codes', 'codebook', 'codes used', 'utilisation', 'entropy (bits)', 'of maximum'], rows)
    lines += [f'![token usage]({plots["tokens"]})', '']
    return '\n'.join(lines)


def write_report(root: str) -> str:
    """Writes ``report.md`` and its plots under ``root``; returns the report's path."""
    manifest = read_manifest(root)
    tally = tally_dataset(root, manifest)
    if not tally.examples:
        raise ValueError(f'{root} holds no examples to report on')
    plots = {'splits': plot_splits(tally, root), 'context': plot_context(tally, root),
             'tokens': plot_tokens(tally, root, manifest['codec']['codebook_size'])}
    if tally.augmented:
        plots['augmentation'] = plot_augmentation(tally, root)
    path = join(root, REPORT_NAME)
    write_atomic(path, render_markdown(root, manifest, tally, read_counters(root), plots).encode('utf-8'))
    return path


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    parser = argparse.ArgumentParser(prog='python -m pipelines.report', allow_abbrev=False,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('dataset', help='Dataset root (the folder of manifest.json): local path, s3:// or gs://.')
    args = parse_tool_args(parser, argv)
    try:
        path = write_report(args.dataset)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'report: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
