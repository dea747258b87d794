"""LoadStems: decode a song's stems, convert channels, resample, align, mark silence.

A stem is one member, the sum of several (MoisesDB's tracks), or one audio stream of a
multi-stream file (MUSDB18's .stem.mp4). Stems filled from a reserve track are fitted to
the song after its own stems are aligned.
"""
import posixpath
import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import decode_audio, decode_streams, peak_dbfs, resample, sum_audio, to_channels
from schemas.records import LoadedSong, SongRef
from transforms.failures import FAILED, INPUT_ERRORS, InputError, failure
from transforms.fill import fit_donor, reference_level
from transforms.sources.archive import member_label, open_song

STAGE = 'decode'


class DecodeOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--max-song-seconds', type=float, default=1800,
                            help='Longest stem accepted, in seconds; longer ones fail. Default: 1800.')
        parser.add_argument('--silent-peak-db', type=float, default=-60.0,
                            help='A stem whose peak stays below this (dBFS) over the whole song is '
                                 'silent and never a target. Default: -60.')


class _Streams:
    """The audio streams a song's stems take from multi-stream files (a MUSDB18 ``.stem.mp4``):
    each file is read and demuxed once, for all its wanted streams together, on first use; a
    stream's audio is handed over once and not kept."""

    def __init__(self, container, stems, max_seconds: float):
        self.container, self.max_seconds, self.wanted, self.decoded = container, max_seconds, {}, {}
        for stem in stems:
            if stem.stream is not None:
                for member in stem.members:
                    self.wanted.setdefault(member, []).append(stem.stream)

    def take(self, member: str, stream: int):
        if member not in self.decoded:
            name = posixpath.basename(member.replace('\\', '/'))
            try:
                self.decoded[member] = decode_streams(self.container.read(member), name,
                                                      sorted(set(self.wanted[member])), self.max_seconds)
            except INPUT_ERRORS as e:   # the file itself: every stem taken from it fails
                self.decoded[member] = e
        if isinstance(self.decoded[member], Exception):
            raise self.decoded[member]
        result = self.decoded[member].pop(stream)
        if isinstance(result, Exception):
            raise result
        return result


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
        self.decode_ms = Metrics.counter(self.__class__, 'decode_ms')   # read, decode, resample
        self.audio_ms_decoded = Metrics.counter(self.__class__, 'audio_ms_decoded')   # stem audio, summed

    def process(self, ref: SongRef):
        try:
            container = open_song(ref.container, ref.input_path, self.limit_bytes)
        except INPUT_ERRORS as e:
            yield failure(STAGE, ref.input_path, e, ref.song_id)
            return
        audio, donors, notes = {}, {}, []
        streams = _Streams(container, ref.stems, self.max_song_seconds)
        for stem in ref.stems:
            start = time.perf_counter()
            loaded = yield from self._load_stem(container, ref, stem, streams)
            self.decode_ms.inc(int(1000 * (time.perf_counter() - start)))
            if loaded is None:
                continue
            (donors if stem.donor else audio)[stem.instance] = loaded[0]
            notes.extend(loaded[1])
        if not audio:
            self.songs_no_audio.inc()
            return
        yield self._align(ref, audio, donors, tuple(notes))

    def _load_stem(self, container, ref: SongRef, stem, streams):
        """Decodes a stem's members and sums them; on a bad member, yields its failure and
        returns None (the stem is dropped, the song goes on)."""
        parts, notes = [], []
        for member in stem.members:
            name = stem.label if len(stem.members) == 1 and stem.stream is None else member_label(member)
            try:
                if stem.stream is None:
                    decoded = decode_audio(container.read(member), name, self.max_song_seconds)
                else:
                    decoded = streams.take(member, stem.stream)
                samples, note = self._load(decoded, name)
            except INPUT_ERRORS as e:
                yield failure(STAGE, self._where(ref, member, stem.stream), e, ref.song_id)
                return None
            parts.append(samples)
            notes.extend([note] if note else [])
        self.stems_decoded.inc()
        summed = parts[0] if len(parts) == 1 else sum_audio(parts)
        self.audio_ms_decoded.inc(int(round(1000 * summed.shape[-1] / self.sample_rate_hz)))
        return summed, notes

    @staticmethod
    def _where(ref: SongRef, member: str, stream) -> str:
        where = f'{ref.input_path}::{member}' if ref.container == 'zip' else member
        return where if stream is None else f'{where}::stream{stream}'

    def _load(self, decoded, label: str):
        samples, rate = decoded
        note = None
        if samples.shape[0] > 2:
            self.stems_downmixed.inc()
            note = f'{label}: {samples.shape[0]} channels down-mixed to {self.channels}'
        samples = np.ascontiguousarray(resample(to_channels(samples, self.channels), rate, self.sample_rate_hz))
        if samples.shape[-1] == 0:
            raise InputError(f'{label}: too short to resample (0 samples at {self.sample_rate_hz} Hz)')
        return samples, note

    def _align(self, ref: SongRef, audio: dict, donors: dict, notes: tuple) -> LoadedSong:
        """Pads the song's own stems to the longest; fits donor stems (from --fill-missing=reserve)
        to that length and to the level of the song's own stems."""
        length = max(a.shape[-1] for a in audio.values())
        padded = {}
        for name, samples in audio.items():
            if samples.shape[-1] < length:
                padded[name] = round((length - samples.shape[-1]) / self.sample_rate_hz, 6)
                audio[name] = np.pad(samples, ((0, 0), (0, length - samples.shape[-1])))
        own_level = reference_level(list(audio.values()))
        for name, samples in donors.items():
            audio[name] = fit_donor(samples, length, own_level)
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
        return songs | 'DecodeStems' >> beam.ParDo(self.fn).with_output_types(LoadedSong).with_outputs(
            FAILED, main='songs')
