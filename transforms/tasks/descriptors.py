"""``--task=descriptors``: a searchable table of frame descriptors of every stem and mix.

Per song: DescribeSongs (each non-silent stem, and the mix = the sum of the song's stems, at
``--sample-rate`` mono: 13 MFCCs with deltas and second deltas, spectral centroid, flatness,
rolloff, RMS and YIN f0 per ``--hop-length`` frame; transforms/descriptor_features.py) ->
one DescriptorBlock per (song, stem), which the shared sinks write as the Parquet table,
partitioned by split (schemas/descriptors.py). The exports sum the index features' moments
over the training rows with a CombineFn into ``descriptor-index/stats.json``, then write the
search index z-scored with it, one part per table part (schemas/descriptor_index.py); the
manifest lists them all. ``python -m pipelines.query`` searches it.
"""
from dataclasses import dataclass
from typing import Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import sum_audio
from schemas.descriptor_index import INDEX_EXPORT, TASK as TASK_FOLDER, STATS_PATH, stats_bytes, stats_document
from schemas.descriptors import CHECK, WRITERS, block_bytes, write_index_part
from schemas.ids import stable_id
from schemas.manifest import ExportedFile
from schemas.descriptors import DescriptorBlock, DescriptorMeta
from schemas.shards import join, write_atomic
from schemas.taxonomy import WHOLE_MIX
from schemas.descriptor_columns import COLUMNS, INDEX_FEATURES, add_moments, block_moments, index_features
from transforms.descriptor_features import check_hop, describe, settings
from transforms.failures import FAILED, contained
from transforms.tasks.task import RECORDS, Task
from transforms.write import assign_shard

MIX = 'mix'
PARTS = ('stems', 'mix')
# Bump when the numbers a block holds change (its id changes with it).
FEATURES_VERSION = 1


class DescriptorsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--hop-length', type=int, default=1024,
                            help='--task=descriptors: samples between frames (at --sample-rate); frame f is '
                                 'centred on sample f * hop-length of its stem. Default: 1024.')
        parser.add_argument('--descriptor-of', action='append', default=None,
                            help='--task=descriptors: what to describe, comma-separated or repeated: stems '
                                 '(each non-silent stem, named by its instance), mix (the sum of the song\'s '
                                 'stems, stem "mix"). Default: stems,mix.')


def parse_parts(values) -> tuple:
    """--descriptor-of -> ('stems', 'mix') in that order.

    Raises:
        ValueError: an unknown part, or none.
    """
    given = [v.strip().lower() for value in values or PARTS for v in str(value).split(',') if v.strip()]
    unknown = sorted(set(given) - set(PARTS))
    if unknown or not given:
        raise ValueError(f'--descriptor-of: choose from {list(PARTS)} (comma-separated), got {values!r}')
    return tuple(p for p in PARTS if p in given)


def mix_of(song) -> np.ndarray:
    """The sum of a song's stems ([1, samples] float32); a song that is only a whole mix
    (--source=folders) is its own mix."""
    instruments = {s.instance: s.instrument for s in song.ref.stems}
    stems = [n for n in sorted(song.audio) if instruments.get(n) != WHOLE_MIX] or sorted(song.audio)
    return sum_audio(song.audio[n] for n in stems)


class DescribeSongFn(beam.DoFn):
    """LoadedSong (split, mono at the analysis rate) -> a DescriptorBlock per described stem
    and one for the mix."""

    def __init__(self, sample_rate_hz: int, hop_length: int, parts: tuple):
        self.sample_rate_hz = sample_rate_hz
        self.hop_length = hop_length
        self.parts = parts
        self.blocks_described = Metrics.counter(self.__class__, 'blocks_described')
        self.frames_described = Metrics.counter(self.__class__, 'frames_described')
        self.stems_silent = Metrics.counter(self.__class__, 'stems_skipped_silent')

    @contained('describe', lambda song: song.ref.song_id)
    def process(self, song):
        instruments = {s.instance: s.instrument for s in song.ref.stems}
        if 'stems' in self.parts:
            for name in sorted(song.audio):
                if instruments.get(name) == WHOLE_MIX:
                    continue                    # a whole mix is described as the mix
                if name in song.silent:
                    self.stems_silent.inc()
                    continue
                yield self._block(song, name, song.audio[name])
        if 'mix' in self.parts:
            yield self._block(song, MIX, mix_of(song))

    def _block(self, song, stem: str, audio: np.ndarray) -> DescriptorBlock:
        ref = song.ref
        features = describe(audio, self.sample_rate_hz, self.hop_length)
        self.blocks_described.inc()
        self.frames_described.inc(len(features))
        meta = DescriptorMeta(
            example_id=stable_id('descriptors', ref.song_id, stem, self.sample_rate_hz, self.hop_length,
                                 FEATURES_VERSION),
            song_id=ref.song_id, stem=stem, split=song.split, artist=ref.artist, title=ref.title, source=ref.source,
            sample_rate_hz=self.sample_rate_hz, hop_length=self.hop_length, num_samples=int(audio.shape[-1]),
            duration_seconds=round(audio.shape[-1] / self.sample_rate_hz, 6))
        return DescriptorBlock(meta=meta, features=features)


class MomentsFn(beam.CombineFn):
    """Exact (count, sum, sum of squares) per index feature over blocks (schemas/descriptor_index.py
    turns them into the z-scoring statistics). Integer sums: the result does not depend on the
    order workers add in."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, moments):
        return moments if acc is None else add_moments(acc, moments)

    def merge_accumulators(self, accs):
        merged = None
        for acc in accs:
            if acc is not None:
                merged = acc if merged is None else add_moments(merged, acc)
        return merged

    def extract_output(self, acc):
        return acc


def statistics(_, moments_by_split: dict, descriptor_settings: dict):
    """stats.json's content from every split's moments (None when nothing was described)."""
    return stats_document({s: m for s, m in moments_by_split.items() if m is not None}, descriptor_settings)


def write_stats(document, root: str):
    """Writes stats.json; yields its ExportedFile."""
    if document is not None:
        size, sha256 = write_atomic(join(root, STATS_PATH), stats_bytes(document))
        yield ExportedFile(export=INDEX_EXPORT, path=STATS_PATH, bytes=size, sha256=sha256)


def write_part(element, root: str, stats):
    """((split, part), blocks) -> the index part's ExportedFiles."""
    (split, index), blocks = element
    if stats is not None:
        yield from write_index_part(root, split, index, blocks, stats)


@dataclass(frozen=True)
class DescriptorsConfig:
    """What the descriptors task reads from the flags, checked once."""
    sample_rate: int
    hop_length: int
    parts: Tuple[str, ...]              # of PARTS
    shard_examples: int                 # the index parts follow the table's sharding
    shard_mb: float

    @classmethod
    def from_args(cls, args, beam_options) -> 'DescriptorsConfig':
        check_hop(args.hop_length)
        if not 8000 <= args.sample_rate <= 192000:
            raise ValueError(f'--sample-rate must be between 8000 and 192000 Hz, got {args.sample_rate}')
        return cls(sample_rate=args.sample_rate, hop_length=args.hop_length, parts=parse_parts(args.descriptor_of),
                   shard_examples=args.shard_examples, shard_mb=args.shard_mb)


class DescriptorsTask(Task):
    NAME = 'descriptors'
    CONFIG = DescriptorsConfig
    # Shards by size too: a block is a whole stem's frames (about 16 kB per second of audio).
    DEFAULTS = {'shard_mb': 256.0}
    WRITERS = WRITERS
    CHECK = CHECK
    OPTIONS = (DescriptorsOptions,)
    SHARED_OPTIONS = ('sample_rate',)          # declared by SeparationOptions
    OUTPUT_FOLDERS = (TASK_FOLDER, INDEX_EXPORT)

    def __init__(self, config: DescriptorsConfig):
        super().__init__(config)
        self.parts = config.parts
        self.settings = settings(config.sample_rate, config.hop_length)

    def audio_format(self) -> tuple:
        return self.config.sample_rate, 1

    def manifest_info(self) -> dict:
        return {'descriptors': dict(self.settings, columns=COLUMNS, index_features=INDEX_FEATURES,
                                    parts=list(self.parts), stats=STATS_PATH)}

    size_of = staticmethod(block_bytes)

    def expand(self, songs):
        blocks = songs | 'DescribeSongs' >> beam.ParDo(
            DescribeSongFn(self.config.sample_rate, self.config.hop_length, self.parts)).with_outputs(FAILED, main='blocks')
        return {RECORDS: blocks.blocks, FAILED: blocks[FAILED]}

    def exports(self, records, root: str):
        """stats.json (moments summed per split by a CombineFn), then the index parts z-scored
        with it: part N holds the blocks of table part N (the sinks' own assignment), same order."""
        moments = (records
                   | 'BlockMoments' >> beam.Map(lambda b: (b.meta.split, block_moments(index_features(b.features))))
                   | 'MomentsPerSplit' >> beam.CombinePerKey(MomentsFn()))
        stats = (records.pipeline
                 | 'StatsSeed' >> beam.Create([None])
                 | 'Statistics' >> beam.Map(statistics, beam.pvalue.AsDict(moments), self.settings))
        sizes = (records
                 | 'BlockSizes' >> beam.Map(lambda b: (b.meta.split, (1, block_bytes(b))))
                 | 'SizePerSplit' >> beam.CombinePerKey(lambda values: tuple(map(sum, zip((0, 0), *values)))))
        parts = (records
                 | 'AssignIndexPart' >> beam.Map(assign_shard, beam.pvalue.AsDict(sizes), self.config.shard_examples,
                                                 self.config.shard_mb)
                 | 'GroupIndexParts' >> beam.GroupByKey()
                 | 'WriteIndexParts' >> beam.FlatMap(write_part, root, beam.pvalue.AsSingleton(stats)))
        return [stats | 'WriteStats' >> beam.FlatMap(write_stats, root), parts]

    def summary(self, manifest: dict, metrics: dict) -> list:
        get = lambda name: int(metrics.get(name, 0))
        output = manifest.get('options', {}).get('output', '<output>')
        stats = manifest.get('exports', {}).get(INDEX_EXPORT)
        return [f'descriptor rows: {get("DescribeSongFn.frames_described")} frames of '
                f'{get("DescribeSongFn.blocks_described")} (song, stem) blocks, hop {self.config.hop_length} at '
                f'{self.config.sample_rate} Hz; silent stems skipped: {get("DescribeSongFn.stems_skipped_silent")}',
                f'z-score statistics: {join(output, STATS_PATH)}' if stats else 'z-score statistics: none (no rows)',
                f'query: python -m pipelines.query --index {output} --audio CLIP.wav -k 10']
