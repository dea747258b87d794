"""Audio that libsndfile cannot read (AAC, ALAC, WMA, Opus in MP4/Matroska/WebM, MUSDB18's
multi-stream ``.stem.mp4``), decoded in process with PyAV (FFmpeg's libraries, bundled in its
wheels): no ``ffmpeg`` program, no temporary files, one demux pass for all the streams a song
needs. Also encodes, for the lossy-codec distortion and for files of several streams.

Audio is float32 numpy ``[channels, samples]``.
"""
import io

import numpy as np

from schemas.audio_limits import AudioDecodeError, ContainerUnreadable, check_header
from schemas.resample import resample

_LAYOUTS = {1: 'mono', 2: 'stereo'}


def _av():
    import av   # imported on first use: most corpora never need it
    return av


def _errors():
    av = _av()
    return (av.FFmpegError, ValueError, OSError, EOFError, IndexError)


def _message(error: Exception) -> str:
    return (getattr(error, 'strerror', None) or str(error) or type(error).__name__).strip()


def _frame_array(frame) -> np.ndarray:
    """A decoded frame as float32 ``[channels, samples]``, whatever its sample format."""
    array = frame.to_ndarray()
    if not frame.format.is_planar:
        array = array.reshape(-1, len(frame.layout.channels)).T
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(1 << (8 * array.dtype.itemsize - 1))
    return array.astype(np.float32, copy=False)


class _Collect:
    """One stream's decoded frames, bounded by ``max_seconds`` while they arrive (headers lie)."""

    def __init__(self, stream, name: str, max_seconds: float):
        self.name, self.rate, self.max_seconds = name, int(stream.codec_context.sample_rate), max_seconds
        self.channels = int(stream.codec_context.channels)
        self.limit = int(max_seconds * self.rate)
        self.parts, self.samples, self.error = [], 0, None

    def add(self, frames) -> None:
        for frame in frames:
            array = _frame_array(frame)
            if array.shape[0] != self.channels:
                raise AudioDecodeError(f'{self.name}: the channel count changes inside the stream '
                                       f'({self.channels} -> {array.shape[0]})')
            self.samples += array.shape[1]
            if self.samples > self.limit:
                raise AudioDecodeError(f'{self.name}: longer than the limit of {self.max_seconds:g} s '
                                       f'(decoding stopped at {self.samples / self.rate:.1f} s)')
            self.parts.append(array)

    def result(self):
        if self.error is not None:
            return self.error
        audio = np.concatenate(self.parts, axis=1) if self.parts else np.zeros((self.channels, 0), np.float32)
        return np.ascontiguousarray(audio), self.rate


def _duration(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else 0.0


def decode_streams(data: bytes, name: str, streams, max_seconds: float) -> dict:
    """Decodes audio streams ``streams`` (0-based among the audio streams) of the file in ``data``
    in one demux pass. Returns ``{stream: (audio, rate) or AudioDecodeError}``: one bad stream
    does not lose the others.

    Raises:
        AudioDecodeError: FFmpeg cannot open the container at all.
    """
    errors = _errors()
    try:
        container = _av().open(io.BytesIO(data), mode='r')
    except errors as e:
        raise ContainerUnreadable(name, _message(e)) from e
    with container:
        found, collect = container.streams.audio, {}
        results = {}
        for index in streams:
            label = name if list(streams) == [0] else f'{name} (stream {index})'
            if index >= len(found):
                results[index] = AudioDecodeError(f'{name}: has no audio stream {index} '
                                                  f'({len(found)} audio streams)')
                continue
            stream = found[index]
            if stream.codec_context is None:    # a stream FFmpeg has no decoder for
                results[index] = AudioDecodeError(f'{label}: audio stream {index} has no decoder '
                                                  f'(codec {getattr(stream, "codec", None)!r})')
                continue
            try:
                check_header(label, int(stream.codec_context.sample_rate or 0), int(stream.codec_context.channels),
                             _duration(stream, container), max_seconds)
            except AudioDecodeError as e:
                results[index] = e
                continue
            collect[stream.index] = (index, _Collect(stream, label, max_seconds))
        if collect:
            _demux(container, [found[i] for i, _ in collect.values()], collect, errors)
        for index, entry in collect.values():
            results[index] = entry.result()
    return results


def _demux(container, streams, collect, errors) -> None:
    try:
        for packet in container.demux(*streams):
            _, entry = collect[packet.stream.index]
            if entry.error is not None:
                continue
            try:
                entry.add(packet.decode())
            except AudioDecodeError as e:
                entry.error, entry.parts = e, []
            except errors as e:
                entry.error = AudioDecodeError(f'{entry.name}: FFmpeg cannot decode it ({_message(e)})')
                entry.parts = []
    except errors as e:   # the container itself breaks off: every stream still open fails
        for _, entry in collect.values():
            if entry.error is None:
                entry.error = AudioDecodeError(f'{entry.name}: the file breaks off ({_message(e)})')
                entry.parts = []


def decode_file(data: bytes, name: str, max_seconds: float):
    """The first audio stream of ``data``: ``(audio, rate)``. Raises AudioDecodeError."""
    result = decode_streams(data, name, [0], max_seconds)[0]
    if isinstance(result, Exception):
        raise result
    return result


def encode(streams, rate: int, codec: str, kbps: int, container_format: str, target=None) -> bytes:
    """Encodes float32 ``[channels, samples]`` arrays, one per stream, into one file of
    ``container_format`` ('mp4', 'mp3', 'ogg', ...); writes it to ``target`` (a path) when given.
    Returns the bytes (empty when written to ``target``)."""
    av = _av()
    buffer = io.BytesIO() if target is None else target
    with av.open(buffer, mode='w', format=container_format) as out:
        encoders = []
        for audio in streams:
            stream = out.add_stream(codec, rate=rate)
            stream.bit_rate = int(kbps) * 1000
            stream.layout = _LAYOUTS[audio.shape[0]]
            encoders.append(stream)
        for stream, audio in zip(encoders, streams):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.float32), format='fltp',
                                               layout=_LAYOUTS[audio.shape[0]])
            frame.sample_rate, frame.pts = rate, 0
            for packet in stream.encode(frame):
                out.mux(packet)
        for stream in encoders:
            for packet in stream.encode(None):
                out.mux(packet)
    return buffer.getvalue() if target is None else b''


def codec_rate(codec: str, rate: int) -> int:
    """``rate`` if the encoder takes it, else the lowest rate it takes above (or its highest)."""
    rates = sorted(_av().codec.Codec(codec, 'w').audio_rates or ())
    if not rates or rate in rates:
        return rate
    return next((r for r in rates if r >= rate), rates[-1])


LOSSY = {'mp3': ('libmp3lame', 'mp3'), 'opus': ('libopus', 'ogg')}


def lossy_round_trip(audio: np.ndarray, rate: int, codec: str, kbps: int) -> np.ndarray:
    """``audio`` encoded with ``codec`` ('mp3' or 'opus') at ``kbps`` and decoded back: the same
    length, channels and rate, aligned (the encoder's delay is written to the file and trimmed on
    decoding). Opus runs at 48 kHz: other rates are resampled on the way in and out."""
    encoder, container_format = LOSSY[codec]
    coded_rate = codec_rate(encoder, rate)
    channels, length = audio.shape
    data = encode([resample(audio, rate, coded_rate)], coded_rate, encoder, kbps, container_format)
    out, got_rate = decode_file(data, f'{codec} round trip', max_seconds=2 * length / rate + 10)
    out = resample(out, got_rate, rate)
    out = out[:, :length] if out.shape[1] >= length else np.pad(out, ((0, 0), (0, length - out.shape[1])))
    return np.ascontiguousarray(out, dtype=np.float32)
