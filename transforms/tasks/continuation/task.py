"""``--task=continuation`` (the default): context tokens -> target tokens.

Per song: PlanExamples (targets x assortments x variants) -> Render (each distinct target and
context waveform once) -> Chunk (runs of windows) -> EncodeChunks (batches across waveforms) ->
AssembleExamples (joins a waveform's parts). Audio is decoded at the
codec's rate and channel count.
"""
from dataclasses import dataclass
from typing import Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.shards import work_path
from schemas.continuation import CHECK, WRITERS, sample_bytes
from transforms.tasks.continuation.assemble import AssembleExamples
from transforms.tasks.continuation.augment import AugmentOptions, AugmentSettings
from transforms.tasks.audiocraft_export import AUDIOCRAFT_FOLDERS, ExportAudiocraft, continuation_item, parse_audiocraft_export
from transforms.chunk import Chunk, WindowSpec
from transforms.tasks.continuation.distort import DistortOptions, DistortSettings
from transforms.codec_runtime import identity as codec_identity
from transforms.codec import CodecSettings
from transforms.codec_options import codec_manifest, codec_settings
from transforms.encode import EncodeChunks
from transforms.failures import FAILED
from transforms.tasks.continuation.plan import PlanExamples, PlanOptions, parse_labels, parse_targets
from transforms.tasks.continuation.render import EXAMPLES, RENDER_VERSION, Render, RenderOptions
from transforms.tasks.task import RECORDS, Task


class ContinuationOptions(PipelineOptions):
    """The continuation task's flags beside its stages' (plan, augment, distort, render)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--write-audio', action='store_true', default=False,
                            help='Also store context.flac/target.flac in the WebDataset samples. Default: off.')
        parser.add_argument('--report', action='store_true', default=False,
                            help='After the build, write report.md and PNG plots next to the manifest '
                                 '(python -m pipelines.report) and print where they are. Default: off.')


@dataclass(frozen=True)
class ContinuationConfig:
    """What the continuation task reads from the flags, checked once."""
    codec: CodecSettings
    batch_size: int                      # --encode-batch-size (0: the codec's default)
    window: WindowSpec
    targets: Tuple[str, ...]             # (): every stem class is a target
    assortments: int
    max_context_stems: int
    seed: int
    augment: AugmentSettings
    distort: DistortSettings
    labels: Tuple[str, ...]
    silence_db: float
    render_buffer_mb: float
    write_audio: bool
    audiocraft: bool
    output: str

    @classmethod
    def from_args(cls, args, beam_options) -> 'ContinuationConfig':
        audiocraft = parse_audiocraft_export(args.export, ContinuationTask.NAME)
        if audiocraft and not args.write_audio:
            raise ValueError('--export=audiocraft lists each example\'s target audio: add --write-audio')
        if args.fill_missing == 'silence':
            raise ValueError('--fill-missing=silence is for --task=separation (a silent target teaches '
                             'continuation nothing); use skip or reserve')
        codec = codec_settings(args, beam_options)
        spec = codec.spec
        return cls(codec=codec, batch_size=args.encode_batch_size,
                   window=WindowSpec(args.chunk_seconds, args.hop_seconds, args.encode_margin_seconds,
                                     spec.sample_rate_hz, spec.hop_length, args.keep_partial, args.encode_span_windows),
                   targets=parse_targets(args.target_stem), assortments=args.assortments,
                   max_context_stems=args.max_context_stems, seed=args.seed,
                   augment=AugmentSettings.from_args(args), distort=DistortSettings.from_args(args),
                   labels=parse_labels(args.target_label), silence_db=args.silence_db,
                   render_buffer_mb=args.render_buffer_mb, write_audio=args.write_audio, audiocraft=audiocraft,
                   output=args.output)


class ContinuationTask(Task):
    NAME = 'continuation'
    CONFIG = ContinuationConfig
    DEFAULTS = {'chunk_seconds': 10.24}
    DEMO_DEFAULTS = {'target_stem': ['guitar'], 'assortments': 4, 'augmentations': 1}
    WRITERS = WRITERS
    CHECK = CHECK
    OPTIONS = (PlanOptions, AugmentOptions, DistortOptions, RenderOptions, ContinuationOptions)
    SHARED_OPTIONS = ('export',)             # declared by SeparationOptions; audiocraft here
    OUTPUT_FOLDERS = AUDIOCRAFT_FOLDERS

    def __init__(self, config: ContinuationConfig):
        super().__init__(config)
        self.codec, self.window = config.codec, config.window
        self.plan = PlanExamples(config.targets, config.assortments, config.max_context_stems, config.seed,
                                 config.augment, config.distort, labels=config.labels)

    def audio_format(self) -> tuple:
        return self.codec.spec.sample_rate_hz, self.codec.spec.channels

    def fill_classes(self) -> tuple:
        return self.config.targets

    def manifest_info(self) -> dict:
        # Whether validation and test examples were augmented and distorted (--augment-eval) or clean.
        return {'codec': codec_manifest(self.codec, self.config.batch_size), 'windows': self.window.manifest(),
                'augment_eval': self.config.augment.splits == 'all'}

    size_of = staticmethod(sample_bytes)

    def shaping(self) -> dict:
        return {'codec': codec_identity(self.codec, self.config.batch_size), 'render': RENDER_VERSION}

    def random_codec_seed(self):
        return self.codec.seed if self.codec.weights == 'random' else None

    def expand(self, songs):
        config, codec = self.config, self.codec
        rendered = (songs
                    | 'PlanExamples' >> self.plan
                    | 'Render' >> Render(self.window, config.silence_db, codec.name, codec.weights_id,
                                         codec.spec.frame_rate, codec.precision,
                                         plans_root=work_path(config.output, 'plans'),
                                         buffer_mb=config.render_buffer_mb))
        chunked = rendered.waveforms | 'Chunk' >> Chunk(self.window, keep_audio=config.write_audio)
        encoded = chunked.chunked | 'EncodeChunks' >> EncodeChunks(
            codec, config.batch_size, config.write_audio, cache_root=work_path(config.output, 'codes'))
        examples = (rendered[EXAMPLES], encoded['encoded']) | 'AssembleExamples' >> AssembleExamples()
        failures = ((rendered[FAILED], chunked[FAILED], encoded[FAILED], examples[FAILED])
                    | 'ContinuationFailures' >> beam.Flatten())
        return {RECORDS: examples.examples, FAILED: failures}

    def exports(self, records, root: str):
        return records | 'ExportAudiocraft' >> ExportAudiocraft(root, continuation_item) if self.config.audiocraft else []

    def summary(self, manifest: dict, metrics: dict) -> list:
        get = lambda name: int(metrics.get(name, 0))
        return [f'windows dropped as silent: {get("RenderFn.windows_silent")}']
