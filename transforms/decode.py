"""LoadStems: decode a song's stems, convert channels, resample, align, mark silence."""
import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import decode_audio, peak_dbfs, resample, to_channels
from schemas.records import LoadedSong, SongRef
from transforms.failures import FAILED, INPUT_ERRORS, InputError, failure
from transforms.sources.archive import open_song

STAGE = 'decode'


class DecodeOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--max-song-seconds', type=float, default=1800,
                            help='Longest stem accepted, in seconds; longer ones fail. Default: 1800.')
        parser.add_argument('--silent-peak-db', type=float, default=-60.0,
                            help='A stem whose peak stays below this (dBFS) over the whole song is '
                                 'silent and never a target. Default: -60.')


class LoadStemsFn(beam.DoFn):
    """SongRef -> LoadedSong at the working rate and channel count.

    A stem that fails to decode goes to ``failed`` and the song goes on without it;
    a song with no decodable stem yields nothing more.
    """

    def __init__(self, sample_rate_hz: int, channels: int, max_song_seconds: float,
                 limit_bytes: int, silent_peak_db: float = -60.0):
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self.max_song_seconds = max_song_seconds
        self.limit_bytes = limit_bytes
        self.silent_peak_db = silent_peak_db
        self.stems_decoded = Metrics.counter(self.__class__, 'stems_decoded')
        self.stems_silent = Metrics.counter(self.__class__, 'stems_silent')
        self.stems_downmixed = Metrics.counter(self.__class__, 'stems_downmixed')
        self.songs_no_audio = Metrics.counter(self.__class__, 'songs_no_audio')

    def process(self, ref: SongRef):
        try:
            container = open_song(ref.container, ref.input_path, self.limit_bytes)
        except INPUT_ERRORS as e:
            yield failure(STAGE, ref.input_path, e, ref.song_id)
            return
        audio, notes = {}, []
        for stem in ref.stems:
            where = f'{ref.input_path}::{stem.member}' if ref.container == 'zip' else stem.member
            try:
                audio[stem.instance], note = self._load(container.read(stem.member), stem.label)
            except INPUT_ERRORS as e:
                yield failure(STAGE, where, e, ref.song_id)
                continue
            self.stems_decoded.inc()
            if note:
                notes.append(note)
        if not audio:
            self.songs_no_audio.inc()
            return
        yield self._align(ref, audio, tuple(notes))

    def _load(self, data: bytes, label: str):
        samples, rate = decode_audio(data, label, self.max_song_seconds)
        note = None
        if samples.shape[0] > 2:
            self.stems_downmixed.inc()
            note = f'{label}: {samples.shape[0]} channels down-mixed to {self.channels}'
        samples = resample(to_channels(samples, self.channels), rate, self.sample_rate_hz)
        if samples.shape[-1] == 0:
            raise InputError(f'{label}: too short to resample (0 samples at {self.sample_rate_hz} Hz)')
        return samples, note

    def _align(self, ref: SongRef, audio: dict, notes: tuple) -> LoadedSong:
        length = max(a.shape[-1] for a in audio.values())
        padded = {}
        for name, samples in audio.items():
            if samples.shape[-1] < length:
                padded[name] = round((length - samples.shape[-1]) / self.sample_rate_hz, 6)
                audio[name] = np.pad(samples, ((0, 0), (0, length - samples.shape[-1])))
        silent = tuple(name for name, samples in audio.items() if peak_dbfs(samples) < self.silent_peak_db)
        self.stems_silent.inc(len(silent))
        return LoadedSong(ref=ref, sample_rate_hz=self.sample_rate_hz, audio=audio, silent=silent,
                          padded_seconds=padded, notes=notes)


class LoadStems(beam.PTransform):
    """Decodes songs; outputs ``songs`` (LoadedSong) and ``failed``."""

    def __init__(self, sample_rate_hz, channels, max_song_seconds=1800, max_uncompressed_mb=2048,
                 silent_peak_db=-60.0):
        super().__init__()
        self.fn = LoadStemsFn(sample_rate_hz, channels, max_song_seconds, int(max_uncompressed_mb * 2**20),
                              silent_peak_db)

    def expand(self, songs):
        return songs | 'DecodeStems' >> beam.ParDo(self.fn).with_outputs(FAILED, main='songs')
