"""The codec's flags (``EncodeOptions``) and what is read from them: the codec settings a task
encodes with (``codec_settings``, threads divided among the local workers) and what the manifest
records of the codec (``codec_manifest``). EncodeChunks (encode.py) runs it.
"""
import os

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from transforms.codec import BACKENDS, CODECS, PRECISIONS, RUNTIME_NAMES, CodecSettings
from transforms.codec_runtime import AUTO_BATCH_SIZE, identity


# Encode geometry by default: runs of 2 windows with 0.25 s on each side (21 s segments at the
# default 10.24 s windows): 1.023 s of codec input per window second, 99.91 % of frames equal to a
# whole-song encode (benchmarks/bench_pipeline.py, a 3-minute song).
SPAN_WINDOWS = 2
MARGIN_SECONDS = 0.25


class EncodeOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--codec', default='encodec_32khz', choices=sorted(CODECS),
                            help='Codec from the registry. Default: encodec_32khz (MusicGen\'s).')
        parser.add_argument('--codec-weights', default=None, choices=['pretrained', 'random'],
                            help='pretrained: the published checkpoint (or --codec-path); random: the same '
                                 'architecture with seeded random weights, for offline runs and tests. '
                                 'Default: pretrained (random with --demo).')
        parser.add_argument('--codec-path', default=None,
                            help='Local directory (transformers) or state-dict file (encodec) with the '
                                 'checkpoint. Default: download by name.')
        parser.add_argument('--codec-backend', default='transformers', choices=sorted(BACKENDS),
                            help='Library that holds the codec\'s weights. Default: transformers.')
        parser.add_argument('--codec-runtime', default='auto', choices=list(RUNTIME_NAMES),
                            help='What runs the encoder: torch, onnxruntime or openvino (the encoder exported '
                                 'to ONNX once, cached). auto: openvino on CPU, torch on CUDA. Default: auto.')
        parser.add_argument('--device', default='auto', help='auto, cpu or cuda[:N]. Default: auto.')
        parser.add_argument('--codec-precision', default='fp32', choices=sorted(PRECISIONS),
                            help='Encode precision: fp32, or bf16/fp16 under torch autocast. Default: fp32.')
        parser.add_argument('--encode-batch-size', type=int, default=0,
                            help='Segments per batch, drawn from any waveform and song (on CPU the LSTM of the encoder runs them together); 0 = auto: '
                                 f'{AUTO_BATCH_SIZE["cpu"]} on CPU, {AUTO_BATCH_SIZE["cuda"]} on CUDA. Default: 0.')
        parser.add_argument('--encode-margin-seconds', type=float, default=MARGIN_SECONDS,
                            help='Real audio encoded on each side of a run of windows, then cut off, so edge '
                                 f'codes match a whole-song encode. Default: {MARGIN_SECONDS}.')
        parser.add_argument('--encode-span-windows', type=int, default=SPAN_WINDOWS,
                            help='Consecutive windows encoded as one segment (margins paid once per segment). '
                                 f'Default: {SPAN_WINDOWS}.')
        parser.add_argument('--codec-threads', '--torch-threads', dest='codec_threads', type=int, default=0,
                            help='Intra-op threads of the codec runtime per worker process; 0 = cores / '
                                 '--direct_num_workers. Default: 0.')


def local_processes(beam_options) -> int:
    """Worker processes the run starts on this machine (the multi-process DirectRunner's or a
    local Dask cluster's), which share its cores; 1 otherwise."""
    from runners.dask import RUNNER_NAMES, local_workers
    if beam_options.view_as(StandardOptions).runner in RUNNER_NAMES:
        return max(1, local_workers(beam_options) or 1)
    direct = beam_options.view_as(DirectOptions)
    if direct.direct_running_mode == 'multi_processing':
        return max(1, direct.direct_num_workers or os.cpu_count() or 1)
    return 1


def codec_settings(args, beam_options) -> CodecSettings:
    """The codec the flags ask for. Random weights with --demo (unless weights are given);
    threads default to the cores divided among the local runner's workers."""
    weights = args.codec_weights or ('random' if args.demo and not args.codec_path else 'pretrained')
    threads = args.codec_threads
    if not threads:
        threads = max(1, (os.cpu_count() or 1) // local_processes(beam_options))
    return CodecSettings(name=args.codec, weights=weights, seed=args.seed, path=args.codec_path,
                         backend=args.codec_backend, device=args.device, threads=threads,
                         precision=args.codec_precision, runtime=args.codec_runtime)


def codec_manifest(codec: CodecSettings, batch_size: int = 0) -> dict:
    """What the manifest says about the codec that made the tokens and how it ran."""
    spec = codec.spec
    return dict({'name': spec.name, 'weights': codec.weights_id, 'weights_kind': codec.weights,
                 'weights_seed': codec.seed if codec.weights == 'random' else None,
                 'weights_path': None if codec.weights == 'random' else codec.path, 'backend': codec.backend,
                 'sample_rate_hz': spec.sample_rate_hz, 'channels': spec.channels, 'frame_rate': spec.frame_rate,
                 'codebooks': spec.codebooks, 'codebook_size': spec.codebook_size,
                 'bandwidth_kbps': spec.bandwidth_kbps}, **identity(codec, batch_size))
