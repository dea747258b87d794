"""Chunk: fixed windows of a waveform, each cut with encode margins of real audio.

Window positions are planned from the target (silent windows dropped) in Render;
this stage cuts the segments the encoder sees. A segment is a run of up to
``span_windows`` consecutive windows with ``margin`` samples on each side (real audio
where the waveform has it), so codes at window edges match a whole-song encode and the
margins are paid once per run, not once per window. A segment of n windows always has
``segment_samples(n)`` samples (zeros past the waveform's end, the real length recorded),
so segments of any waveform and song can share a batch.
"""
import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import rms_dbfs
from schemas.records import ChunkedWaveform, Segment, Waveform
from transforms.failures import FAILED, contained


class ChunkOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--chunk-seconds', type=float, default=None,
                            help='Window length in seconds (with a codec, a whole number of its frames). '
                                 'Default: the task\'s (continuation: 10.24, 512 frames at 50 Hz).')
        parser.add_argument('--hop-seconds', type=float, default=None,
                            help='Distance between window starts in seconds. Default: = --chunk-seconds.')
        parser.add_argument('--keep-partial', action='store_true', default=False,
                            help='Pad and keep the last partial window instead of dropping it. Default: off.')
        parser.add_argument('--silence-db', type=float, default=-50.0,
                            help='Drop a window whose target RMS is below this (dBFS). Default: -50.')


class WindowSpec:
    """Window geometry in samples, checked against the codec's frame size."""

    def __init__(self, chunk_seconds, hop_seconds, margin_seconds, sample_rate_hz, hop_length, keep_partial,
                 span_windows: int = 1):
        if span_windows < 1:
            raise ValueError(f'--encode-span-windows={span_windows}: at least 1')
        self.span_windows = span_windows
        self.sample_rate_hz = sample_rate_hz
        self.hop_length = hop_length
        self.chunk = self._samples('--chunk-seconds', chunk_seconds)
        self.hop = self._samples('--hop-seconds', chunk_seconds if hop_seconds is None else hop_seconds)
        self.margin = int(round(margin_seconds * sample_rate_hz / hop_length)) * hop_length
        if self.chunk <= 0 or self.hop <= 0 or self.margin < 0:
            raise ValueError('--chunk-seconds and --hop-seconds must be positive, the margin not negative')
        self.keep_partial = keep_partial

    def _samples(self, flag, seconds):
        samples = seconds * self.sample_rate_hz
        frames = samples / self.hop_length
        if abs(frames - round(frames)) > 1e-6:
            raise ValueError(f'{flag}={seconds} is not a whole number of codec frames '
                             f'({self.hop_length / self.sample_rate_hz * 1000:g} ms each)')
        return int(round(frames)) * self.hop_length

    @property
    def frames(self) -> int:
        return self.chunk // self.hop_length

    def manifest(self) -> dict:
        """The geometry as the manifest records it (what readers and verify go by)."""
        return {'frames': self.frames, 'chunk_samples': self.chunk, 'hop_samples': self.hop,
                'margin_samples': self.margin, 'span_windows': self.span_windows,
                'sample_rate_hz': self.sample_rate_hz, 'keep_partial': self.keep_partial}

    def starts(self, num_samples: int) -> list:
        """Start sample of every window of a waveform of ``num_samples``."""
        full = list(range(0, num_samples - self.chunk + 1, self.hop))
        last = full[-1] + self.hop if full else 0
        if self.keep_partial and last < num_samples:
            full.append(last)
        return full

    def non_silent(self, target: np.ndarray, silence_db: float):
        """(kept window indices, number dropped as silent) for a target waveform."""
        kept, dropped = [], 0
        for index, start in enumerate(self.starts(target.shape[-1])):
            if rms_dbfs(target[:, start:start + self.chunk]) < silence_db:
                dropped += 1
            else:
                kept.append(index)
        return kept, dropped

    def segment_samples(self, windows: int) -> int:
        """The codec input length of a segment of ``windows`` consecutive windows."""
        return self.chunk + (windows - 1) * self.hop + 2 * self.margin

    def spans(self, windows) -> list:
        """``windows`` (sorted indices) as runs of consecutive windows, each of at most
        ``span_windows``: the windows one segment encodes, margins paid once per run."""
        spans = []
        for index in windows:
            if spans and spans[-1][-1] == index - 1 and len(spans[-1]) < self.span_windows:
                spans[-1].append(index)
            else:
                spans.append([index])
        return [tuple(span) for span in spans]

    def segment(self, audio: np.ndarray, windows: tuple) -> Segment:
        """The encoder's view of consecutive ``windows``: ``segment_samples(len(windows))`` samples
        from the first window's start less the margin (or the waveform's start), real audio as far
        as the waveform goes, zeros after."""
        length = self.segment_samples(len(windows))
        seg_start = max(0, windows[0] * self.hop - self.margin)
        piece = audio[:, seg_start:seg_start + length]
        real = piece.shape[-1]
        if real < length:
            piece = np.pad(piece, ((0, 0), (0, length - real)))
        offsets = tuple((w * self.hop - seg_start) // self.hop_length for w in windows)
        return Segment(windows=tuple(windows), audio=np.ascontiguousarray(piece, dtype=np.float32),
                       real_samples=real, offsets_frames=offsets, frames=self.frames)

    def window_audio(self, audio: np.ndarray, window: int) -> np.ndarray:
        """Window ``window`` alone, zero-padded when it runs past the waveform's end."""
        start = window * self.hop
        piece = audio[:, start:start + self.chunk]
        if piece.shape[-1] < self.chunk:
            piece = np.pad(piece, ((0, 0), (0, self.chunk - piece.shape[-1])))
        return np.ascontiguousarray(piece)

    def chunked(self, song_id: str, waveform_id: str, audio: np.ndarray, windows, keep_audio: bool):
        """The ChunkedWaveform of ``windows`` of ``audio``: its segments, and each window's audio
        when ``keep_audio``."""
        return ChunkedWaveform(song_id=song_id, waveform_id=waveform_id,
                               segments=tuple(self.segment(audio, span) for span in self.spans(sorted(windows))),
                               window_audio={w: self.window_audio(audio, w) for w in windows} if keep_audio else {})


class ChunkFn(beam.DoFn):
    def __init__(self, spec: WindowSpec, keep_audio: bool):
        self.spec = spec
        self.keep_audio = keep_audio

    @contained('chunk', lambda waveform: waveform.song_id)
    def process(self, waveform: Waveform):
        Metrics.counter(self.__class__, 'windows_cut').inc(len(waveform.windows))
        yield self.spec.chunked(waveform.song_id, waveform.waveform_id, waveform.audio, waveform.windows,
                                self.keep_audio)


class Chunk(beam.PTransform):
    def __init__(self, spec: WindowSpec, keep_audio: bool = False):
        super().__init__()
        self.fn = ChunkFn(spec, keep_audio)

    def expand(self, waveforms):
        """Waveform -> ChunkedWaveform (main, ``chunked``) and ``failed``."""
        return waveforms | 'CutWindows' >> beam.ParDo(self.fn).with_output_types(ChunkedWaveform).with_outputs(
            FAILED, main='chunked')
