"""Chunk: fixed windows of a waveform, each cut with encode margins of real audio.

Window positions are planned from the target (silent windows dropped) in Render;
this stage cuts the segments the encoder sees: the window plus up to
``margin`` samples of real audio on each side, so codes at window edges match a
whole-song encode.
"""
import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import rms_dbfs
from schemas.records import ChunkedWaveform, Segment, Waveform


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

    def __init__(self, chunk_seconds, hop_seconds, margin_seconds, sample_rate_hz, hop_length, keep_partial):
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

    def segment(self, audio: np.ndarray, index: int, keep_window: bool) -> Segment:
        """The encoder's view of window ``index``: the window plus real-audio margins."""
        start = index * self.hop
        length = audio.shape[-1]
        seg_start = max(0, start - self.margin)
        seg_end = min(length, start + self.chunk + self.margin)
        piece = audio[:, seg_start:seg_end]
        if start + self.chunk > length:  # the padded last window
            piece = np.pad(piece, ((0, 0), (0, start + self.chunk - seg_end)))
        window = piece[:, start - seg_start:start - seg_start + self.chunk] if keep_window else None
        return Segment(window=index, audio=np.ascontiguousarray(piece),
                       offset_frames=(start - seg_start) // self.hop_length, frames=self.frames,
                       window_audio=None if window is None else np.ascontiguousarray(window))


class ChunkFn(beam.DoFn):
    def __init__(self, spec: WindowSpec, keep_audio: bool):
        self.spec = spec
        self.keep_audio = keep_audio

    def process(self, waveform: Waveform):
        Metrics.counter(self.__class__, 'windows_cut').inc(len(waveform.windows))
        yield ChunkedWaveform(song_id=waveform.song_id, waveform_id=waveform.waveform_id,
                              segments=tuple(self.spec.segment(waveform.audio, w, self.keep_audio)
                                             for w in waveform.windows))


class Chunk(beam.PTransform):
    def __init__(self, spec: WindowSpec, keep_audio: bool = False):
        super().__init__()
        self.fn = ChunkFn(spec, keep_audio)

    def expand(self, waveforms):
        return waveforms | 'CutWindows' >> beam.ParDo(self.fn).with_output_types(ChunkedWaveform)
