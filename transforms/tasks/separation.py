"""``--task=separation``: aligned chunks of a mixture and its target stems, for Open-Unmix,
Demucs and Spleeter-style trainers.

Per song: SeparateSongs (the song's stems summed into the targets; ``other`` = every stem no
other target takes; the mixture = the sum of all the song's stems, never the source's own mix
file; one gain on all of them when the sum would clip) -> CutChunks (``--chunk-seconds``
windows every ``--hop-seconds``, 24-bit FLAC; a chunk whose mixture, or every target, is below
``--min-rms-db`` is dropped and counted). With ``--export``, the same separated songs are
written whole as track folders and Spleeter CSVs (separation_export.py). Audio is decoded at
``--sample-rate``/``--channels``. Nothing is augmented: trainers remix chunks on the fly.
"""
from dataclasses import dataclass
from typing import Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import encode_pcm24, headroom_gain, sum_audio
from schemas.ids import stable_id
from schemas.separation import (CHECK, FLAC_SUBTYPE, RMS_FLOOR_DB, WRITERS, SeparatedSong, SeparationExample,
                                SeparationMeta, level_db, sample_bytes)
from transforms.failures import FAILED, contained
from transforms.tasks.separation_export import (FOLDERS, SPLEETER_CSV, SPLEETER_DIR, ExportTracks, folder_path,
                                                parse_exports, track_name)
from transforms.tasks.separation_targets import DEFAULT_TARGETS, OTHER, Target, assign_stems, parse_targets
from transforms.tasks.task import RECORDS, Task

SPLEETER_RATE_HZ = 44100


class SeparationOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--targets', action='append', default=None,
                            help='--task=separation: canonical classes to separate, comma-separated or '
                                 'repeated; "other" = every stem no other target takes, summed. Default: '
                                 f'{",".join(DEFAULT_TARGETS)} (none beside --target-labels when those are given).')
        parser.add_argument('--target-labels', action='append', default=None,
                            help='--task=separation: targets by the source\'s own stem names (Slakh programs '
                                 'such as "Electric Bass (pick)", MoisesDB stem names...), comma- or "|"-'
                                 'separated or repeated; case, "_" and "-" do not matter. A stem goes to the '
                                 'target of its finest matching name. Default: none.')
        parser.add_argument('--sample-rate', type=int, default=44100,
                            help='--task=separation: sample rate of every file, Hz; --task=descriptors: the '
                                 'rate audio is analysed at (mono). Default: 44100.')
        parser.add_argument('--channels', type=int, default=2, choices=[1, 2],
                            help='--task=separation: channels of every file. Default: 2.')
        parser.add_argument('--min-rms-db', type=float, default=-60.0,
                            help='--task=separation: drop a chunk whose mixture, or every target, has an RMS '
                                 'below this (dBFS); counted. Default: -60.')
        parser.add_argument('--export', action='append', default=None,
                            help='Extra outputs beside the shards. --task=separation: folders: <out>/folders/'
                                 '{train,test}/<track>/{mixture,<target>}.wav and setup.yaml (MUSDB18-HQ layout, read by '
                                 'musdb.DB(setup_file=\'setup.yaml\', is_wav=True)); spleeter-csv: '
                                 '<out>/spleeter/<split>.csv for Spleeter\'s train_csv/validation_csv (implies '
                                 'folders). --task=continuation (with --write-audio) and --task=concept: '
                                 'audiocraft: audio, MusicInfo .json and egs/<split>/data.jsonl for audiocraft '
                                 '(MusicGen). Comma-separated or repeated. Default: none.')


class SeparateSongFn(beam.DoFn):
    """LoadedSong -> SeparatedSong, or nothing (counted) when it lacks a target and the fill mode
    is not silence."""

    def __init__(self, targets: tuple, fill_mode: str):
        self.targets = targets
        self.fill_mode = fill_mode
        self.songs_separated = Metrics.counter(self.__class__, 'songs_separated')
        self.songs_skipped = Metrics.counter(self.__class__, 'songs_skipped_missing_target')
        self.targets_silenced = Metrics.counter(self.__class__, 'targets_filled_silence')
        self.songs_scaled = Metrics.counter(self.__class__, 'songs_scaled_to_avoid_clipping')

    @contained('separate', lambda song: song.ref.song_id)
    def process(self, song):
        stems = [s for s in song.ref.stems if s.instance in song.audio]
        assigned, rest = assign_stems(stems, self.targets)
        missing = [t.name for t in self.targets if t.kind != OTHER and not assigned[t.name]]
        for name in missing:
            Metrics.counter(self.__class__, f'songs_missing_{name}').inc()
        if missing and self.fill_mode != 'silence':
            self.songs_skipped.inc()
            return
        self.targets_silenced.inc(len(missing))
        like = next(iter(song.audio.values()))
        targets = [(t.name, sum_audio((song.audio[n] for n in assigned[t.name]), like)) for t in self.targets]
        mixture = sum_audio([a for _, a in targets] + [song.audio[n] for n in rest], like)
        gain = min([headroom_gain(mixture)] + [headroom_gain(a) for _, a in targets])
        if gain < 1.0:
            self.songs_scaled.inc()
            for audio in [mixture] + [a for _, a in targets]:    # the buffers sum_audio made: scaled in place
                audio *= np.float32(gain)
        by_instance = {s.instance: s for s in stems}
        self.songs_separated.inc()
        yield SeparatedSong.of(
            song, mixture=mixture, targets=tuple(targets), gain=round(float(gain), 6),
            target_stems={name: tuple(found) for name, found in assigned.items()},
            silent_targets=tuple(name for name, found in assigned.items() if not found),
            filled_targets={name: '; '.join(by_instance[i].donor for i in found if by_instance[i].donor)
                            for name, found in assigned.items() if any(by_instance[i].donor for i in found)},
            bleed_stems=tuple(s.instance for s in stems if s.has_bleed), track=track_name(song.ref))


@dataclass(frozen=True)
class ChunkGeometry:
    """Chunk length and hop in samples; the last partial chunk is zero-padded with keep_partial."""
    chunk: int
    hop: int
    keep_partial: bool = False

    @classmethod
    def from_seconds(cls, chunk_seconds: float, hop_seconds, rate: int, keep_partial: bool):
        chunk = int(round(chunk_seconds * rate))
        hop = chunk if hop_seconds is None else int(round(hop_seconds * rate))
        if chunk <= 0 or hop <= 0:
            raise ValueError('--chunk-seconds and --hop-seconds must be positive (at least one sample)')
        return cls(chunk, hop, keep_partial)

    def starts(self, num_samples: int) -> list:
        full = list(range(0, num_samples - self.chunk + 1, self.hop))
        last = full[-1] + self.hop if full else 0
        return full + ([last] if self.keep_partial and last < num_samples else [])


class CutChunksFn(beam.DoFn):
    """SeparatedSong -> SeparationExample per kept chunk."""

    def __init__(self, geometry: ChunkGeometry, min_rms_db: float, labels: dict, identity: tuple, folders: bool):
        self.geometry = geometry
        self.min_rms_db = min_rms_db
        self.labels = labels             # target name -> the class or label the user gave
        self.identity = identity         # what shapes a chunk besides its song and start: in its id
        self.folders = folders
        self.chunks_written = Metrics.counter(self.__class__, 'chunks_written')
        self.dropped_mixture = Metrics.counter(self.__class__, 'chunks_dropped_silent_mixture')
        self.dropped_targets = Metrics.counter(self.__class__, 'chunks_dropped_silent_targets')
        self.songs_too_short = Metrics.counter(self.__class__, 'songs_too_short')
        self.songs_all_silent = Metrics.counter(self.__class__, 'songs_all_windows_silent')

    @contained('cut', lambda song: song.ref.song_id)
    def process(self, song: SeparatedSong):
        starts = self.geometry.starts(song.num_samples)
        if not starts:
            self.songs_too_short.inc()
            return
        kept = 0
        for index, start in enumerate(starts):
            mixture = self._cut(song.mixture, start)
            targets = [(name, self._cut(audio, start)) for name, audio in song.targets]
            mixture_db, target_db = level_db(mixture), {name: level_db(a) for name, a in targets}
            if mixture_db < self.min_rms_db:
                self.dropped_mixture.inc()
                continue
            if all(db < self.min_rms_db for db in target_db.values()):
                self.dropped_targets.inc()
                continue
            kept += 1
            self.chunks_written.inc()
            rate = song.sample_rate_hz
            yield SeparationExample(
                meta=self._meta(song, index, start, mixture_db, target_db),
                mixture_flac=encode_pcm24(mixture, rate),
                target_flacs=tuple((name, encode_pcm24(a, rate)) for name, a in targets))
        if not kept:
            self.songs_all_silent.inc()

    def _cut(self, audio: np.ndarray, start: int) -> np.ndarray:
        piece = audio[:, start:start + self.geometry.chunk]
        if piece.shape[-1] < self.geometry.chunk:
            piece = np.pad(piece, ((0, 0), (0, self.geometry.chunk - piece.shape[-1])))
        return np.ascontiguousarray(piece)

    def _meta(self, song: SeparatedSong, index: int, start: int, mixture_db: float, target_db: dict):
        ref, rate, chunk = song.ref, song.sample_rate_hz, self.geometry.chunk
        return SeparationMeta(
            example_id=stable_id('separation', ref.song_id, start, chunk, *self.identity),
            song_id=ref.song_id, artist=ref.artist, title=ref.title, track=song.track, source=ref.source,
            split=song.split, chunk_index=index, start_sample=start, start_seconds=round(start / rate, 6),
            num_samples=chunk, duration_seconds=round(chunk / rate, 6),
            padded_samples=max(0, start + chunk - song.num_samples), sample_rate_hz=rate,
            channels=song.mixture.shape[0], gain=song.gain, targets=tuple(n for n, _ in song.targets),
            target_labels=dict(self.labels), target_stems={n: list(s) for n, s in song.target_stems.items()},
            mixture_rms_db=mixture_db, target_rms_db=target_db, silent_targets=song.silent_targets,
            filled_targets=dict(song.filled_targets), bleed_stems=song.bleed_stems,
            folder_path=folder_path(song.split, song.track) if self.folders else None)


def check_flags(args) -> None:
    """Rejects flags this task would silently ignore or cannot honour.

    Raises:
        ValueError: a whole-mix source, a reserve without classes to fill,
            or a Spleeter export at a rate or channel count Spleeter's training does not read.
    """
    if args.source == 'folders':
        raise ValueError('--task=separation needs stems; --source=folders songs are whole mixes')
    if args.sample_rate <= 0:
        raise ValueError(f'--sample-rate must be positive, got {args.sample_rate}')
    if not np.isfinite(args.min_rms_db):
        raise ValueError(f'--min-rms-db must be a number of dBFS, got {args.min_rms_db}')
    if SPLEETER_CSV in parse_exports(args.export) and (args.sample_rate != SPLEETER_RATE_HZ or args.channels < 2):
        raise ValueError(f'--export=spleeter-csv: Spleeter\'s training reads {SPLEETER_RATE_HZ} Hz audio with at '
                         f'least 2 channels; got --sample-rate={args.sample_rate} --channels={args.channels}')


@dataclass(frozen=True)
class SeparationConfig:
    """What the separation task reads from the flags, checked once."""
    targets: Tuple[Target, ...]
    geometry: ChunkGeometry
    sample_rate: int
    channels: int
    fill_missing: str
    min_rms_db: float
    exports: Tuple[str, ...]             # --export, in EXPORTS order
    output: str

    @classmethod
    def from_args(cls, args, beam_options) -> 'SeparationConfig':
        check_flags(args)
        targets = parse_targets(args.targets, args.target_labels)
        if args.fill_missing == 'reserve' and not any(t.kind == 'class' for t in targets):
            raise ValueError('--fill-missing=reserve fills canonical classes: name some in --targets '
                             '(labels and other are never filled from the reserve)')
        return cls(targets=targets, sample_rate=args.sample_rate, channels=args.channels,
                   geometry=ChunkGeometry.from_seconds(args.chunk_seconds, args.hop_seconds, args.sample_rate,
                                                       args.keep_partial),
                   fill_missing=args.fill_missing, min_rms_db=args.min_rms_db, exports=parse_exports(args.export),
                   output=args.output)


class SeparationTask(Task):
    NAME = 'separation'
    CONFIG = SeparationConfig
    DEFAULTS = {'chunk_seconds': 3.0}
    # The demo corpus has drums, bass, guitar and keys (no vocals): keys go to other.
    DEMO_DEFAULTS = {'targets': ['drums,bass,guitar,other'], 'export': ['folders,spleeter-csv']}
    WRITERS = WRITERS
    CHECK = CHECK
    OPTIONS = (SeparationOptions,)
    OUTPUT_FOLDERS = (FOLDERS, SPLEETER_DIR)
    size_of = staticmethod(sample_bytes)

    def __init__(self, config: SeparationConfig):
        super().__init__(config)
        self.targets, self.geometry = config.targets, config.geometry
        self._exported = []

    def audio_format(self) -> tuple:
        return self.config.sample_rate, self.config.channels

    def fill_classes(self) -> tuple:
        return tuple(t.key for t in self.targets if t.kind == 'class')

    def identity(self) -> tuple:
        """What shapes every chunk's audio besides its song and position: in each example id."""
        return (tuple((t.name, t.label) for t in self.targets), tuple((t.kind, t.key) for t in self.targets),
                self.config.sample_rate, self.config.channels, self.config.fill_missing)

    def manifest_info(self) -> dict:
        config = self.config
        return {'separation': {
            'targets': [t.name for t in self.targets],
            'target_labels': {t.name: t.label for t in self.targets},
            'target_kinds': {t.name: t.kind for t in self.targets},
            'sample_rate_hz': config.sample_rate, 'channels': config.channels, 'flac_subtype': FLAC_SUBTYPE,
            'chunk_samples': self.geometry.chunk, 'hop_samples': self.geometry.hop,
            'keep_partial': self.geometry.keep_partial, 'min_rms_db': config.min_rms_db,
            'rms_floor_db': RMS_FLOOR_DB, 'fill_missing': config.fill_missing, 'exports': list(config.exports),
            'mixture': 'sum of all the song\'s stems (targets plus stems no target takes), scaled by gain'}}

    def expand(self, songs):
        config = self.config
        separate = songs | 'SeparateSongs' >> beam.ParDo(SeparateSongFn(
            self.targets, config.fill_missing)).with_outputs(FAILED, main='songs')
        separated = separate.songs
        chunks = separated | 'CutChunks' >> beam.ParDo(CutChunksFn(
            self.geometry, config.min_rms_db, {t.name: t.label for t in self.targets}, self.identity(),
            FOLDERS in config.exports)).with_outputs(FAILED, main='chunks')
        self._exported = [separated | 'ExportTracks' >> ExportTracks(
            config.output, config.exports, [t.name for t in self.targets],
            config.sample_rate)] if config.exports else []
        failures = (separate[FAILED], chunks[FAILED]) | 'SeparationFailures' >> beam.Flatten()
        return {RECORDS: chunks.chunks, FAILED: failures}

    def exports(self, records, root: str):
        """The exports' ExportedFile PCollections, made in expand from the whole separated songs
        (the records are chunks). ``root`` is --output, which expand already wrote under."""
        return list(self._exported)

    def summary(self, manifest: dict, metrics: dict) -> list:
        get = lambda name: int(metrics.get(name, 0))
        min_db = self.config.min_rms_db
        lines = [f'songs separated: {get("SeparateSongFn.songs_separated")}, skipped for a missing target: '
                 f'{get("SeparateSongFn.songs_skipped_missing_target")}, too short for a chunk: '
                 f'{get("CutChunksFn.songs_too_short")}, every chunk dropped: '
                 f'{get("CutChunksFn.songs_all_windows_silent")}',
                 f'chunks written: {get("CutChunksFn.chunks_written")}; dropped: '
                 f'{get("CutChunksFn.chunks_dropped_silent_mixture")} with the mixture below {min_db:g} dBFS, '
                 f'{get("CutChunksFn.chunks_dropped_silent_targets")} with every target below it',
                 f'targets written as silence: {get("SeparateSongFn.targets_filled_silence")}; songs scaled '
                 f'down to avoid clipping: {get("SeparateSongFn.songs_scaled_to_avoid_clipping")}']
        for name, export in manifest.get('exports', {}).items():
            lines.append(f'export {name}: {export["files"]} file(s), {export["bytes"] / 1e6:.1f} MB')
        return lines
