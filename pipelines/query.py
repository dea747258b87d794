"""The segments of a descriptors dataset nearest to a clip: ``python -m pipelines.query <dataset>
--audio clip.wav -k 10`` (``stemforge query ...``). The dataset is a local folder, or ``s3://``/``gs://``:
its manifest and the index files it lists are copied once into the local cache (checked by sha256)
and memory-mapped there.

Extracts the clip's frame descriptors with the build's own code and settings (mono at the
index's rate; transforms/descriptor_features.py), z-scores them with the build's
``stats.json`` and returns the k nearest segments of the table: a segment is a run of as many
frames as the clip has, inside one (song, stem), starting at any frame. Its distance is the
root mean square, over the compared frames, of the Euclidean distance between the clip's
z-scored frame and the segment's frame at the same position. Only the clip's frames whose
analysis window and delta context lie inside the clip are compared (the others saw zero
padding, which the song's frames did not): a segment cut out of a song at a frame-aligned
offset matches its source exactly (distance ~0).

The scan is vectorised over the memory-mapped index (no per-row Python): for every start at
once, ``sum_j |q_j - z_{f+j}|^2`` from one matrix product per chunk of rows. A clip longer than
``COARSE_FRAMES`` compared frames is first scanned with that many of its frames, evenly spaced
(a coarse distance), and the best separated starts are then re-ranked with every frame over
their neighbourhood; ``--exact`` scans every frame of every start (slower for long clips).
Results in one (song, stem) start more than ``--exclusion-frames`` apart (default: half the clip)
so that the k results are k places, not one place shifted by a frame.
"""
import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass

if __name__ == '__main__':
    # The query's matrix products are thin and memory-bound: a second BLAS thread costs more to
    # wake (and spins) than it gains, most of all on a busy machine. Set before numpy loads.
    for _variable in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_variable, '1')

import numpy as np  # noqa: E402  (after the thread settings)

from schemas.audio_io import AudioDecodeError, decode_audio, resample, to_channels  # noqa: E402
from pipelines.index_fetch import fetch_index  # noqa: E402
from schemas.descriptor_index import IndexUnusable, open_index, zscore  # noqa: E402
from schemas.descriptor_columns import index_features  # noqa: E402
from transforms.descriptor_features import DELTA_WIDTH, N_FFT, describe, frame_count, yin_lags  # noqa: E402

COARSE_FRAMES = 16
CHUNK_CELLS = 1 << 21            # query frames x rows per matrix product (bounds memory)


class ClipUnusable(ValueError):
    """The clip cannot be read or is too short; the message says why."""


@dataclass(frozen=True)
class Match:
    song_id: str
    stem: str
    split: str
    artist: str
    title: str
    frame: int                 # the segment's first frame in its (song, stem)
    sample_offset: int         # frame * hop_length: where the segment starts in the stem's audio
    seconds: float
    distance: float


def load_clip(path: str, sample_rate_hz: int, max_seconds: float = 600.0) -> np.ndarray:
    """The clip as mono float32 samples at ``sample_rate_hz``.

    Raises:
        ClipUnusable: missing, unreadable or over-long audio.
    """
    try:
        with open(path, 'rb') as handle:
            audio, rate = decode_audio(handle.read(), path, max_seconds)
    except (OSError, AudioDecodeError) as e:
        raise ClipUnusable(f'cannot read the clip: {e}') from None
    return resample(to_channels(audio, 1), rate, sample_rate_hz)[0]


def compared_frames(num_samples: int, sample_rate_hz: int, hop: int) -> np.ndarray:
    """The clip frames to compare: those whose analysis window (and, when the clip is long enough,
    whose delta context) lies inside the clip.

    Raises:
        ClipUnusable: not one whole analysis frame.
    """
    half = max(N_FFT, yin_lags(sample_rate_hz)[0]) // 2
    first, last = -(-half // hop), (num_samples - half) // hop
    if last < first:
        raise ClipUnusable(f'the clip holds {num_samples} samples at {sample_rate_hz} Hz, shorter than one '
                           f'analysis frame ({2 * half} samples, {2 * half / sample_rate_hz:.3f} s)')
    margin = 2 * (DELTA_WIDTH // 2)          # delta of delta: 4 + 4 frames each side
    if last - first >= 2 * margin:
        first, last = first + margin, last - margin
    return np.arange(first, last + 1)


def valid_starts(part, span: int, splits, stems) -> np.ndarray:
    """Per row of the part: may a segment of ``span`` frames start there (inside its block, and
    the block passes the filters)?"""
    keep = np.array([(not splits or b['split'] in splits) and (not stems or b['stem'] in stems)
                     for b in part.blocks], dtype=bool)
    last_start = np.repeat(part.first_rows + part.frames - span, part.frames)
    return (np.arange(len(part.matrix)) <= last_start) & np.repeat(keep, part.frames)


def scan(part, queries: np.ndarray, offsets: np.ndarray, span: int, valid: np.ndarray) -> np.ndarray:
    """float32 ``sum_j |q_j - z_{f + offsets_j}|^2`` for every start f of the part (inf where
    ``valid`` is false): one matrix product per chunk of memory-mapped rows, then one vector add
    per query frame."""
    rows = len(part.matrix)
    # [q, -1/2] . [z, |z|^2] = q.z - |z|^2 / 2: summed over j, -(distance - |q|^2) / 2
    augmented = np.hstack([queries, np.full((len(queries), 1), -0.5)]).astype(np.float32)
    q_norms = np.float32(np.sum(queries.astype(np.float64) ** 2))
    step = max(4096, CHUNK_CELLS // len(queries))
    out = np.full(rows, np.inf, dtype=np.float32)
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        products = augmented @ part.matrix[start:min(stop + span - 1, rows)].T       # [queries, rows]
        total = np.zeros(stop - start, dtype=np.float32)
        for j, offset in enumerate(offsets):
            terms = products[j, offset:offset + stop - start]
            total[:len(terms)] += terms      # starts whose last rows lie past the part are invalid
        out[start:stop] = q_norms - 2.0 * total
    out[~valid] = np.inf
    return np.maximum(out, 0.0, out=out)


def separated(distances: np.ndarray, count: int, zone: int, part) -> list:
    """Up to ``count`` (start, distance), best first, no two in one block within ``zone`` frames."""
    distances = distances.copy()
    ends = part.first_rows + part.frames
    picked = []
    for _ in range(count):
        best = int(np.argmin(distances))
        if not np.isfinite(distances[best]):
            break
        picked.append((best, float(distances[best])))
        block = int(np.searchsorted(part.first_rows, best, side='right')) - 1
        distances[max(part.first_rows[block], best - zone):min(ends[block], best + zone + 1)] = np.inf
    return picked


def segment_distances(part, starts: np.ndarray, queries: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``sum_j |q_j - z_{f + offsets_j}|^2`` for consecutive ``starts`` and consecutive ``offsets``:
    one float32 product of the memory-mapped rows (norms included, as in ``scan``), then the
    sums along its diagonals in float64."""
    first, last = int(starts[0]) + int(offsets[0]), int(starts[-1]) + int(offsets[-1])
    augmented = np.hstack([queries, np.full((len(queries), 1), -0.5)]).astype(np.float32)
    products = part.matrix[first:last + 1] @ augmented.T              # [rows, queries]
    diagonal = np.lib.stride_tricks.as_strided(products, shape=(len(starts), len(offsets)),
                                               strides=(products.strides[0], sum(products.strides)))
    return np.maximum(np.sum(queries.astype(np.float64) ** 2) - 2.0 * diagonal.sum(axis=1, dtype=np.float64), 0.0)


def exact_distance(part, start: int, queries: np.ndarray, offsets: np.ndarray) -> float:
    """``sum_j |q_j - z_{start + offsets_j}|^2`` from the differences themselves, in float64."""
    rows = np.asarray(part.matrix[start + offsets, :-1], dtype=np.float64)
    return float(np.sum((rows - queries.astype(np.float64)) ** 2))


def search(index, audio: np.ndarray, k: int = 10, splits=(), stems=(), exact: bool = False,
           exclusion_frames: int = None) -> list:
    """The ``k`` nearest segments of ``index`` to mono ``audio`` (at the index's rate), nearest first.

    Raises:
        ClipUnusable: the clip is shorter than one analysis frame.
    """
    rate, hop = int(index.settings['sample_rate_hz']), int(index.settings['hop_length'])
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    offsets = compared_frames(len(audio), rate, hop)
    span = frame_count(len(audio), hop)
    queries = zscore(index_features(describe(audio, rate, hop)), index.mean, index.std)[offsets]
    coarse = offsets if exact or len(offsets) <= COARSE_FRAMES else \
        offsets[np.round(np.linspace(0, len(offsets) - 1, COARSE_FRAMES)).astype(int)]
    zone = max(1, span // 2) if exclusion_frames is None else max(0, int(exclusion_frames))
    wanted = k if coarse is offsets else 2 * k + 8
    candidates = []                     # (coarse distance, part, start)
    for number, part in enumerate(index.parts):
        valid = valid_starts(part, span, set(splits or ()), set(stems or ()))
        if valid.any():
            distances = scan(part, queries[np.searchsorted(offsets, coarse)], coarse, span, valid)
            candidates += [(d, number, start) for start, d in separated(distances, wanted, zone, part)]
    refine = 0 if coarse is offsets else zone       # re-rank every start a coarse pick stood for
    scored = {}
    for _, number, start in sorted(candidates)[:wanted]:
        part = index.parts[number]
        block = int(np.searchsorted(part.first_rows, start, side='right')) - 1
        low = max(int(part.first_rows[block]), start - refine)
        high = min(int(part.first_rows[block] + part.frames[block]) - span, start + refine)
        starts = np.arange(low, high + 1)
        scored.update(zip(((number, int(f)) for f in starts), segment_distances(part, starts, queries, offsets)))
    return _best(index, scored, k, zone, queries, offsets)


def _best(index, scored: dict, k: int, zone: int, queries: np.ndarray, offsets: np.ndarray) -> list:
    """The k best of the scored starts, no two in one block within ``zone`` frames, as Matches
    with their exact distances."""
    hop, rate = int(index.settings['hop_length']), int(index.settings['sample_rate_hz'])
    taken, matches = [], []
    for (number, start), distance in sorted(scored.items(), key=lambda item: (item[1], item[0])):
        part = index.parts[number]
        block = int(np.searchsorted(part.first_rows, start, side='right')) - 1
        if any(n == number and b == block and abs(s - start) <= zone for n, b, s in taken):
            continue
        taken.append((number, block, start))
        info, frame = part.blocks[block], start - int(part.first_rows[block])
        matches.append(Match(song_id=info['song_id'], stem=info['stem'], split=info['split'], artist=info['artist'],
                             title=info['title'], frame=frame, sample_offset=frame * hop,
                             seconds=round(frame * hop / rate, 6),
                             distance=math.sqrt(exact_distance(part, start, queries, offsets) / len(offsets))))
        if len(matches) == k:
            break
    return matches


def query(root: str, audio_path: str, k: int = 10, **options) -> list:
    """Opens the index at ``root``, reads the clip and returns its k nearest segments (Matches).

    Raises:
        IndexUnusable: no usable descriptors index at ``root``.
        ClipUnusable: the clip cannot be read or is too short.
    """
    index = open_index(fetch_index(root) if '://' in root else root)
    return search(index, load_clip(audio_path, int(index.settings['sample_rate_hz'])), k, **options)


def _values(values) -> tuple:
    return tuple(v.strip() for value in values or () for v in value.split(',') if v.strip())


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pipelines.query', allow_abbrev=False,
        description='The k segments of a --task=descriptors dataset nearest to a clip: song, stem, sample offset, '
                    'distance (RMS over frames of the z-scored descriptors\' Euclidean distance). Exit status 2 on '
                    'a missing index or an unusable clip.')
    parser.add_argument('dataset', nargs='?', help='The --output of a --task=descriptors build: a local folder, '
                                                   's3:// or gs://.')
    parser.add_argument('--index', help=argparse.SUPPRESS)    # the dataset, as a flag (earlier releases)
    parser.add_argument('--audio', required=True, help='The clip: WAV, FLAC, OGG, MP3 (any rate, any channels).')
    parser.add_argument('-k', type=int, default=10, help='How many segments. Default: 10.')
    parser.add_argument('--split', action='append', help='Only these splits (comma-separated or repeated). '
                                                         'Default: all.')
    parser.add_argument('--stem', action='append', help='Only these stems ("mix" for mixes; comma-separated or '
                                                        'repeated). Default: all.')
    parser.add_argument('--exact', action='store_true', help='Compare every frame of the clip at every start '
                                                             '(no coarse pass). Default: off.')
    parser.add_argument('--exclusion-frames', type=int, default=None,
                        help='Results in one (song, stem) start more than this many frames apart; 0 allows '
                             'overlapping results. Default: half the clip\'s frames.')
    parser.add_argument('--json', action='store_true', help='Print the matches as a JSON list. Default: a table.')
    return parser


def table(matches: list) -> str:
    lines = [f'{"#":>3}  {"distance":>9}  {"song_id":<16}  {"stem":<12}  {"split":<10}  {"sample_offset":>13}  '
             f'{"seconds":>9}  artist - title']
    for rank, m in enumerate(matches, 1):
        lines.append(f'{rank:>3}  {m.distance:>9.4f}  {m.song_id:<16}  {m.stem:<12}  {m.split:<10}  '
                     f'{m.sample_offset:>13}  {m.seconds:>9.3f}  {m.artist or "?"} - {m.title}')
    return '\n'.join(lines) if matches else 'no segment of the index is as long as the clip'


def main(argv=None) -> int:
    from pipelines.flags import parse_tool_args
    args = parse_tool_args(make_parser(), argv)
    dataset = args.dataset or args.index
    if not dataset:
        print('error: give the dataset (the --output of a --task=descriptors build)', file=sys.stderr)
        return 2
    if args.k < 1:
        print('error: -k must be at least 1', file=sys.stderr)
        return 2
    try:
        matches = query(dataset, args.audio, args.k, splits=_values(args.split), stems=_values(args.stem),
                        exact=args.exact, exclusion_frames=args.exclusion_frames)
    except (IndexUnusable, ClipUnusable) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(json.dumps([asdict(m) for m in matches], indent=1) if args.json else table(matches))
    return 0


if __name__ == '__main__':
    sys.exit(main())
