"""EncodeChunks: EnCodec codes for every window of every distinct waveform.

The model is built once per worker process (``DoFn.setup`` through ``shared.Shared``)
and runs under ``torch.inference_mode`` in batches of ``--encode-batch-size``
segments. A batch holds segments of one waveform and one length, so the same input
always meets the same batch, whatever the runner or bundle: shards stay
byte-identical. Each element is one distinct waveform, encoded once.
"""
import io
import os
import time

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.utils import shared

from schemas.audio_io import encode_flac
from schemas.records import ChunkedWaveform, EncodedWaveform
from schemas.shards import write_atomic
from transforms.codec import BACKENDS, CODECS, PRECISIONS, CodecSettings, load_codec

AUTO_BATCH_SIZE = {'cpu': 1, 'cuda': 16}


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
                            help='Library that runs the codec. Default: transformers.')
        parser.add_argument('--device', default='auto', help='auto, cpu or cuda[:N]. Default: auto.')
        parser.add_argument('--codec-precision', default='fp32', choices=sorted(PRECISIONS),
                            help='Encode precision: fp32, or bf16/fp16 under autocast. Default: fp32.')
        parser.add_argument('--encode-batch-size', type=int, default=0,
                            help='Segments per forward pass; 0 = auto: 1 on CPU (measured fastest there, '
                                 'see benchmarks/), 16 on CUDA. Default: 0.')
        parser.add_argument('--encode-margin-seconds', type=float, default=0.5,
                            help='Real audio encoded on each side of a window, then cut off, so edge codes '
                                 'match a whole-song encode. Default: 0.5.')
        parser.add_argument('--torch-threads', type=int, default=0,
                            help='Torch intra-op threads per worker; 0 = cores / --direct_num_workers. '
                                 'Default: 0.')


def codec_settings(args, beam_options) -> CodecSettings:
    """The codec the flags ask for. Random weights with --demo (unless weights are given);
    torch threads default to the cores divided among the local runner's workers."""
    weights = args.codec_weights or ('random' if args.demo and not args.codec_path else 'pretrained')
    threads = args.torch_threads
    if not threads:
        direct = beam_options.view_as(DirectOptions)
        workers = direct.direct_num_workers if direct.direct_running_mode == 'multi_processing' else 1
        threads = max(1, (os.cpu_count() or 1) // max(1, workers or os.cpu_count() or 1))
    return CodecSettings(name=args.codec, weights=weights, seed=args.seed, path=args.codec_path,
                         backend=args.codec_backend, device=args.device, torch_threads=threads,
                         precision=args.codec_precision)


def codec_manifest(codec: CodecSettings) -> dict:
    """What the manifest says about the codec that made the tokens."""
    spec = codec.spec
    return {'name': spec.name, 'weights': codec.weights_id, 'backend': codec.backend,
            'sample_rate_hz': spec.sample_rate_hz, 'channels': spec.channels, 'frame_rate': spec.frame_rate,
            'codebooks': spec.codebooks, 'codebook_size': spec.codebook_size,
            'bandwidth_kbps': spec.bandwidth_kbps, 'torch_threads': codec.torch_threads,
            'precision': codec.precision}


def encode_segments(codec, segments, batch_size: int):
    """Encodes segments in batches of ``batch_size``, longest first, each batch padded to its longest
    segment with a padding mask; returns {window: (codes int16, scale)}. The batches depend only on
    the waveform's segments, so the same input always meets the same batch."""
    ordered = sorted(segments, key=lambda s: (-s.audio.shape[-1], s.window))
    out = {}
    for i in range(0, len(ordered), batch_size):
        batch = ordered[i:i + batch_size]
        lengths = [s.audio.shape[-1] for s in batch]
        length = max(lengths)
        if min(lengths) == length:
            codes, scales = codec.encode(np.stack([s.audio for s in batch]))
        else:
            padded = np.stack([np.pad(s.audio, ((0, 0), (0, length - s.audio.shape[-1]))) for s in batch])
            codes, scales = codec.encode(padded, lengths=lengths)
        for j, segment in enumerate(batch):
            kept = codes[j, :, segment.offset_frames:segment.offset_frames + segment.frames]
            if kept.shape[-1] != segment.frames:
                raise RuntimeError(f'codec returned {codes.shape[-1]} frames for a segment of {length} '
                                   f'samples; window {segment.window} needs {segment.frames}')
            out[segment.window] = (kept.astype(np.int16), None if scales is None else float(scales[j]))
    return out


class _CodecHandle:
    """A weak-referenceable holder for the shared codec."""

    def __init__(self, codec):
        self.codec = codec


def _cache_file(cache_root: str, song_id: str, waveform_id: str) -> str:
    return FileSystems.join(cache_root, f'{song_id}--{waveform_id}.npz')


def save_encoded(path: str, encoded: EncodedWaveform) -> None:
    """Stores a waveform's codes (and scales, FLAC bytes) as .npz, without pickle, atomically."""
    arrays = {f'codes_{w}': c for w, c in encoded.codes.items()}
    arrays.update({f'scale_{w}': np.float64(v) for w, v in encoded.scales.items()})
    arrays.update({f'flac_{w}': np.frombuffer(b, dtype=np.uint8) for w, b in encoded.audio_flac.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def load_encoded(path: str, song_id: str, waveform_id: str) -> EncodedWaveform:
    with FileSystems.open(path) as handle:
        data = np.load(io.BytesIO(handle.read()), allow_pickle=False)
    parts = {k: k.split('_', 1) for k in data.files}
    return EncodedWaveform(
        song_id=song_id, waveform_id=waveform_id,
        codes={int(w): data[k] for k, (kind, w) in parts.items() if kind == 'codes'},
        scales={int(w): float(data[k]) for k, (kind, w) in parts.items() if kind == 'scale'},
        audio_flac={int(w): data[k].tobytes() for k, (kind, w) in parts.items() if kind == 'flac'})


class EncodeChunksFn(beam.DoFn):
    """ChunkedWaveform -> EncodedWaveform. With ``cache_root``, each result is also stored there
    and a waveform already stored (by an interrupted run being resumed) is not encoded again."""

    def __init__(self, settings: CodecSettings, batch_size: int, shared_handle: shared.Shared,
                 write_audio: bool = False, cache_root: str = None):
        if batch_size < 0:
            raise ValueError('--encode-batch-size must be 0 (auto) or more')
        self.settings = settings
        self.batch_size = batch_size
        self.shared_handle = shared_handle
        self.write_audio = write_audio
        self.cache_root = cache_root
        self.codec = None
        counters = EncodeChunksFn   # subclasses (other tasks' encoders) count under the same names
        self.waveforms_reused = Metrics.counter(counters, 'waveforms_reused')
        self.encode_ms = Metrics.counter(counters, 'encode_ms')
        self.waveforms_encoded = Metrics.counter(counters, 'waveforms_encoded')
        self.windows_encoded = Metrics.counter(counters, 'windows_encoded')
        # Window audio that has codes in the dataset, encoded now or reused from the cache.
        self.audio_ms_encoded = Metrics.counter(counters, 'audio_ms_encoded')

    def setup(self):
        self.codec = self.shared_handle.acquire(lambda: _CodecHandle(load_codec(self.settings)),
                                                tag=repr(self.settings)).codec
        if not self.batch_size:
            self.batch_size = AUTO_BATCH_SIZE['cpu' if self.codec.device == 'cpu' else 'cuda']

    def process(self, chunked: ChunkedWaveform):
        yield self.encode_chunked(chunked)

    def encode_chunked(self, chunked: ChunkedWaveform) -> EncodedWaveform:
        """The codes of every segment: read back from the cache when an interrupted run stored
        them, else encoded (and stored). Other tasks' encoders subclass this DoFn and call it."""
        frames = sum(s.frames for s in chunked.segments)
        self.audio_ms_encoded.inc(int(round(1000 * frames / self.settings.spec.frame_rate)))
        cache = self.cache_root and _cache_file(self.cache_root, chunked.song_id, chunked.waveform_id)
        if cache and FileSystems.exists(cache):
            stored = load_encoded(cache, chunked.song_id, chunked.waveform_id)
            if set(stored.codes) == {s.window for s in chunked.segments}:
                self.waveforms_reused.inc()
                return stored
        start = time.perf_counter()
        result = self._encode(chunked)
        self.encode_ms.inc(int(1000 * (time.perf_counter() - start)))
        if cache:
            save_encoded(cache, result)
        return result

    def _encode(self, chunked: ChunkedWaveform) -> EncodedWaveform:
        encoded = encode_segments(self.codec, chunked.segments, self.batch_size)
        self.waveforms_encoded.inc()
        self.windows_encoded.inc(len(encoded))
        rate = self.settings.spec.sample_rate_hz
        audio = {s.window: encode_flac(s.window_audio, rate) for s in chunked.segments
                 if self.write_audio and s.window_audio is not None}
        return EncodedWaveform(song_id=chunked.song_id, waveform_id=chunked.waveform_id,
                               codes={w: c for w, (c, _) in encoded.items()},
                               scales={w: s for w, (_, s) in encoded.items() if s is not None},
                               audio_flac=audio)


class EncodeChunks(beam.PTransform):
    def __init__(self, settings: CodecSettings, batch_size: int = 0, write_audio: bool = False,
                 cache_root: str = None):
        super().__init__()
        self.fn = EncodeChunksFn(settings, batch_size, shared.Shared(), write_audio, cache_root)

    def expand(self, chunked):
        return chunked | 'EncodeWindows' >> beam.ParDo(self.fn)
