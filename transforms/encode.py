"""EncodeChunks: EnCodec codes for every window of every distinct waveform.

ChunkedWaveforms arrive as segments (runs of consecutive windows with their margins, one
fixed length per number of windows). ``SplitSegmentsFn`` reads back what an interrupted run
already stored and sends the rest on one segment at a time; ``EncodeSegmentsFn`` keeps one
queue per segment length, holding segments of any waveform and song, and encodes a queue
whenever it holds a full batch (the rest at the end of a bundle, padded with silent
items). The runtime (``--codec-runtime``) is loaded once per worker process through
``shared.Shared``; a window's codes do not depend on which segments share its batch, so
shards stay byte-identical whatever the runner, worker count or bundle order. Each encoded
segment leaves as an EncodedWaveform part; AssembleExamples joins the parts of a waveform.
"""
import time

import apache_beam as beam
import numpy as np
from apache_beam import pvalue, typehints
from apache_beam.metrics import Metrics
from apache_beam.utils import shared
from apache_beam.utils.windowed_value import WindowedValue

from schemas.audio_io import encode_flac
from schemas.records import ChunkedWaveform, EncodedWaveform, Segment
from transforms.codec import CodecSettings, load_codec, quick_device
from transforms.codec_runtime import AUTO_BATCH_SIZE, load_exported_runtime, load_runtime
from transforms.encode_store import load_encoded, save_encoded, segment_file, stored_before
from transforms.failures import FAILED, contained, inject_fault, song_failure


def pad_batch(segments, batch_size: int) -> np.ndarray:
    """The segments' audio as one ``[batch_size, channels, samples]`` batch, silent items after."""
    first = segments[0].audio
    batch = np.zeros((batch_size,) + first.shape, np.float32)
    for i, segment in enumerate(segments):
        batch[i] = segment.audio
    return batch


def encode_batch(runtime, segments) -> list:
    """Encodes up to ``runtime.batch_size`` segments of one length; returns, per segment,
    {window: (codes int16 [codebooks, frames], scale or None)}."""
    codes, scales = runtime.encode(pad_batch(segments, runtime.batch_size))
    out = []
    for j, segment in enumerate(segments):
        windows = {}
        for window, offset in zip(segment.windows, segment.offsets_frames):
            kept = codes[j, :, offset:offset + segment.frames]
            if kept.shape[-1] != segment.frames:
                raise RuntimeError(f'codec returned {codes.shape[-1]} frames for a segment of '
                                   f'{segment.audio.shape[-1]} samples; window {window} needs {segment.frames} '
                                   f'from frame {offset}')
            windows[window] = (kept.astype(np.int16), None if scales is None else float(scales[j]))
        out.append(windows)
    return out


def encode_segments(runtime, segments) -> dict:
    """Encodes ``segments`` of one waveform (outside a pipeline: benchmarks, tests), in batches of
    one length; returns {window: (codes, scale)}."""
    out = {}
    by_length = {}
    for segment in segments:
        by_length.setdefault(segment.audio.shape[-1], []).append(segment)
    for length, group in sorted(by_length.items()):
        for i in range(0, len(group), runtime.batch_size):
            for windows in encode_batch(runtime, group[i:i + runtime.batch_size]):
                out.update(windows)
    return out


class _CodecHandle:
    """A weak-referenceable holder for a worker's codec and its runtime (one for every segment length)."""

    def __init__(self, settings: CodecSettings, batch_size: int):
        self.settings, self._codec, self._runtime = settings, None, None
        device = quick_device(settings.device) or self.codec.device
        self.batch_size = batch_size or AUTO_BATCH_SIZE['cpu' if device == 'cpu' else 'cuda']

    @property
    def codec(self):
        """The loaded codec (loaded on first use: an export found by its note runs without it)."""
        if self._codec is None:
            self._codec = load_codec(self.settings)
        return self._codec

    @property
    def runtime(self):
        """The runtime (loaded on first use, from an export's note where there is one)."""
        if self._runtime is None:
            self._runtime = (load_exported_runtime(self.settings, self.batch_size)
                             or load_runtime(self.codec, self.batch_size))
        return self._runtime


def codec_handle(settings: CodecSettings, batch_size: int = 0) -> _CodecHandle:
    """A codec and its runtimes outside a pipeline."""
    return _CodecHandle(settings, batch_size)


class SplitSegmentsFn(beam.DoFn):
    """ChunkedWaveform -> one (waveform key, Segment) per segment to encode; segments an
    interrupted run stored are read back instead (``REUSED``, as EncodedWaveform parts), and
    with ``write_audio`` each window's FLAC leaves as a part of its own."""
    REUSED = 'reused'

    def __init__(self, sample_rate_hz: int, frame_rate: float, write_audio: bool, cache_root: str = None):
        self.sample_rate_hz, self.frame_rate = sample_rate_hz, frame_rate
        self.write_audio, self.cache_root = write_audio, cache_root
        self.started = time.time()     # on the machine that builds the graph
        counters = EncodeChunksFn   # every task's encoder counts under the same names
        self.waveforms_reused = Metrics.counter(counters, 'waveforms_reused')
        self.segments_reused = Metrics.counter(counters, 'segments_reused')
        self.audio_ms_encoded = Metrics.counter(counters, 'audio_ms_encoded')
        self.waveforms_encoded = Metrics.counter(counters, 'waveforms_encoded')

    @contained('encode', lambda chunked: chunked.song_id)
    def process(self, chunked: ChunkedWaveform):
        key = (chunked.song_id, chunked.waveform_id)
        frames = sum(s.frames * len(s.windows) for s in chunked.segments)
        self.audio_ms_encoded.inc(int(round(1000 * frames / self.frame_rate)))
        reused = 0
        for segment in chunked.segments:
            cache = self.cache_root and segment_file(self.cache_root, *key, segment)
            if cache and stored_before(cache, self.started):
                reused += 1
                self.segments_reused.inc()
                yield pvalue.TaggedOutput(self.REUSED, load_encoded(cache, *key))
            else:
                yield key, segment
        if reused == len(chunked.segments):
            self.waveforms_reused.inc()
        else:
            self.waveforms_encoded.inc()
        if self.write_audio and chunked.window_audio:
            yield pvalue.TaggedOutput(self.REUSED, EncodedWaveform(
                song_id=chunked.song_id, waveform_id=chunked.waveform_id, codes={},
                audio_flac={w: encode_flac(a, self.sample_rate_hz) for w, a in chunked.window_audio.items()}))


class EncodeChunksFn(beam.DoFn):
    """(waveform key, Segment) -> EncodedWaveform part, in batches of segments of one length from
    any waveform. With ``cache_root``, each part is also stored there (``--resume``)."""

    def __init__(self, settings: CodecSettings, batch_size: int, shared_handle: shared.Shared,
                 cache_root: str = None):
        if batch_size < 0:
            raise ValueError('--encode-batch-size must be 0 (auto) or more')
        self.settings, self.batch_size = settings, batch_size
        self.shared_handle, self.cache_root = shared_handle, cache_root
        self.handle, self.queues = None, {}
        self.encode_ms = Metrics.counter(EncodeChunksFn, 'encode_ms')
        self.windows_encoded = Metrics.counter(EncodeChunksFn, 'windows_encoded')
        self.segments_encoded = Metrics.counter(EncodeChunksFn, 'segments_encoded')
        self.batches_encoded = Metrics.counter(EncodeChunksFn, 'batches_encoded')
        self.codec_input_ms = Metrics.counter(EncodeChunksFn, 'codec_input_ms')
        self.batches_retried = Metrics.counter(EncodeChunksFn, 'batches_retried')   # one segment at a time

    def setup(self):
        self.handle = self.shared_handle.acquire(lambda: _CodecHandle(self.settings, self.batch_size),
                                                 tag=repr((self.settings, self.batch_size)))

    def start_bundle(self):
        self.queues = {}

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        key, segment = element
        length = segment.audio.shape[-1]
        queue = self.queues.setdefault(length, [])
        queue.append((key, segment, timestamp, window))
        if len(queue) >= self.handle.batch_size:
            del self.queues[length]
            yield from self._encode(queue)

    def finish_bundle(self):
        queues, self.queues = self.queues, {}
        for _, queue in sorted(queues.items()):
            yield from self._encode(queue)

    def _encode(self, queue):
        """Encodes a queue as one batch; if the batch fails, each segment alone (codes do not depend
        on the batch), so only the segments that fail alone fail their songs."""
        try:
            for key, _, _, _ in queue:
                inject_fault('encode', key[0])
            parts = list(self._encode_batch(queue))
        except Exception as e:   # noqa: BLE001 - one bad segment must not fail the others' songs
            if len(queue) == 1:
                key, _, timestamp, window = queue[0]
                yield pvalue.TaggedOutput(FAILED, WindowedValue(song_failure('encode', key[0], e).value,
                                                                timestamp, [window]))
                return
            self.batches_retried.inc()
            for item in queue:
                yield from self._encode([item])
            return
        for part, timestamp, window in parts:
            yield WindowedValue(part, timestamp, [window])

    def _encode_batch(self, queue):
        runtime = self.handle.runtime
        start = time.perf_counter()
        encoded = encode_batch(runtime, [segment for _, segment, _, _ in queue])
        self.encode_ms.inc(int(1000 * (time.perf_counter() - start)))
        self.batches_encoded.inc()
        rate = self.settings.spec.sample_rate_hz
        for (key, segment, timestamp, window), windows in zip(queue, encoded):
            self.segments_encoded.inc()
            self.windows_encoded.inc(len(windows))
            self.codec_input_ms.inc(int(round(1000 * segment.audio.shape[-1] / rate)))
            part = EncodedWaveform(song_id=key[0], waveform_id=key[1], codes={w: c for w, (c, _) in windows.items()},
                                   scales={w: s for w, (_, s) in windows.items() if s is not None})
            if self.cache_root:
                save_encoded(segment_file(self.cache_root, *key, segment), part)
            yield part, timestamp, window


class EncodeChunks(beam.PTransform):
    """ChunkedWaveform -> {'encoded': EncodedWaveform parts (codes of some windows, or FLAC of
    windows), 'failed': the songs whose segments failed}; AssembleExamples and the concept task
    join a waveform's parts."""

    def __init__(self, settings: CodecSettings, batch_size: int = 0, write_audio: bool = False,
                 cache_root: str = None):
        super().__init__()
        spec = settings.spec
        self.split = SplitSegmentsFn(spec.sample_rate_hz, spec.frame_rate, write_audio, cache_root)
        self.encode = EncodeChunksFn(settings, batch_size, shared.Shared(), cache_root)

    def expand(self, chunked):
        segments = chunked | 'SplitSegments' >> beam.ParDo(self.split).with_output_types(
            typehints.Tuple[typehints.Tuple[str, str], Segment]).with_outputs(
            SplitSegmentsFn.REUSED, FAILED, main='segments')
        encoded = segments.segments | 'EncodeSegments' >> beam.ParDo(self.encode).with_outputs(FAILED, main='encoded')
        return {'encoded': (encoded.encoded, segments[SplitSegmentsFn.REUSED]) | 'WithReused' >> beam.Flatten(),
                FAILED: (segments[FAILED], encoded[FAILED]) | 'EncodeFailures' >> beam.Flatten()}
