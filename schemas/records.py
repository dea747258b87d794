"""The records that flow between stages.

Frozen dataclasses, ids first, units in names. Records that leave the pipeline
(or are logged) have ``to_dict``/``from_dict`` that never mutate their input.
Audio is float32 numpy ``[channels, samples]`` at the working sample rate; codes
are int16 ``[codebooks, frames]``.
"""
import dataclasses
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np


class DictRecord:
    """The public base of the records: ``to_dict``/``from_dict`` for dataclasses whose fields are plain
    values or tuples of them (or of records)."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [v.to_dict() if hasattr(v, 'to_dict') else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict):
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if isinstance(value, list):
                nested = _NESTED.get((cls.__name__, f.name))
                value = tuple(nested.from_dict(v) if nested else v for v in value)
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class StemRef(DictRecord):
    """One stem file of a song: its instance name, class and where it is."""
    instance: str          # 'guitar', 'guitar#2'
    instrument: str        # canonical class
    member: str            # member name inside the archive, or file path of a folder song
    label: str             # the source's own name for it (the file name without extension)
    summed_members: Tuple[str, ...] = ()   # further members mixed into this stem (MoisesDB tracks)
    stream: Optional[int] = None           # audio stream index in a multi-stream file (MUSDB .stem.mp4)
    source_labels: Tuple[str, ...] = ()    # the source's other names (Slakh inst_class, MoisesDB trackTypes)
    has_bleed: Optional[bool] = None       # a track of it hears other instruments (MoisesDB)
    donor: Optional[str] = None            # '<track>/<stem>' of the reserve track a filled stem comes from
    donor_song_id: Optional[str] = None    # that reserve track's song id
    donor_split: Optional[str] = None      # and its split (a song is filled from its own split only)

    @property
    def members(self) -> Tuple[str, ...]:
        """Every member whose audio makes up this stem (summed)."""
        return (self.member,) + tuple(self.summed_members)

    @property
    def labels(self) -> Tuple[str, ...]:
        """Every name the source gives this stem, finest first."""
        return tuple(dict.fromkeys((self.label,) + tuple(self.source_labels)))


# Where a credit's further artists start: "feat.", "ft.", "featuring", "with", "&", ";" or ",".
_FEATURING = re.compile(r'\s*(?:[\(\[]\s*)?(?:\b(?:feat|ft|featuring|with)\b\.?|&|;|,)\s*.*$')


def artist_key(artist: str) -> str:
    """The name an artist is grouped by: unicode compatibility form without accents, case folded,
    whitespace collapsed, featured artists dropped ("Ada Lace", "ada  lace ", "Ada Lace feat. Bo"
    and "ADA LACÉ & Bo" are one artist). Empty when nothing is left."""
    text = unicodedata.normalize('NFKD', artist)
    text = ''.join(c for c in text if not unicodedata.combining(c)).casefold()
    text = ' '.join(text.split())
    return _FEATURING.sub('', text).strip() or text


@dataclass(frozen=True)
class SongRef(DictRecord):
    """Where a song's files are and what they are called. Small: no audio."""
    song_id: str
    artist: Optional[str]
    title: str
    source: str            # 'stems', ...
    input_path: str        # the archive or the folder
    container: str         # 'zip' | 'folder'
    content_sha256: str
    stems: Tuple[StemRef, ...] = ()
    skipped_members: Tuple[str, ...] = ()
    source_split: Optional[str] = None   # the corpus' own split ('train', 'validation', 'test', 'omitted')
    group_key: Optional[str] = None      # a source's own unit of splitting (Slakh: the Lakh MIDI UUID)

    @property
    def group(self) -> str:
        """The unit of splitting: the source's group when it has one, else the artist (by
        ``artist_key``) when known, else the song."""
        if self.group_key:
            return self.group_key
        key = artist_key(self.artist) if self.artist else ''
        return f'artist:{key}' if key else f'song:{self.song_id}'

    def example_fields(self, target: str, context) -> dict:
        """The source's names of an example's stems, as ExampleMeta fields: the target's label(s),
        the filled stems' donors and the stems recorded with bleed."""
        stems = {s.instance: s for s in self.stems}
        used = [stems[n] for n in (target, *context) if n in stems]
        found = stems.get(target)
        return dict(target_label=found.label if found else None,
                    target_labels=found.labels if found else (),
                    donors=tuple(f'{s.instance}<-{s.donor}' for s in used if s.donor),
                    donor_song_ids=tuple(s.donor_song_id for s in used if s.donor),
                    donor_splits=tuple(s.donor_split for s in used if s.donor),
                    bleed_stems=tuple(s.instance for s in used if s.has_bleed))


@dataclass(frozen=True)
class FailedRecord(DictRecord):
    """One element that failed a stage, for the run's error log."""
    stage: str
    input: str
    error_type: str
    message: str
    song_id: Optional[str] = None


@dataclass(frozen=True)
class LoadedSong:
    """A song's decoded, resampled, aligned stems."""
    ref: SongRef
    sample_rate_hz: int
    audio: Dict[str, np.ndarray]                 # instance -> [channels, samples]
    silent: Tuple[str, ...] = ()
    padded_seconds: Dict[str, float] = field(default_factory=dict)
    notes: Tuple[str, ...] = ()
    split: Optional[str] = None

    @property
    def num_samples(self) -> int:
        return next(iter(self.audio.values())).shape[-1] if self.audio else 0

    @property
    def duration_seconds(self) -> float:
        return self.num_samples / self.sample_rate_hz


@dataclass(frozen=True)
class AugmentParams(DictRecord):
    """One augmented variant's parameters, applied alike to context and target."""
    pitch_semitones: float = 0.0
    tempo: float = 1.0
    gain_db: float = 0.0


@dataclass(frozen=True)
class DistortionStep(DictRecord):
    """One effect applied to a context: its name and parameters (name, value pairs)."""
    name: str
    params: Tuple[Tuple[str, object], ...] = ()

    def to_dict(self) -> dict:
        return {'name': self.name, 'params': dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict):
        return cls(name=data['name'], params=tuple(sorted(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in data.get('params', {}).items())))


@dataclass(frozen=True)
class ExamplePlan(DictRecord):
    """One planned example family of a song: a target instance, a context assortment, and the
    variant (0 = original; others carry their augmentation) with the context's distortion."""
    target: str
    context: Tuple[str, ...]
    assortment: int
    variant: int = 0
    augmentation: Optional[AugmentParams] = None
    distortion: Tuple[DistortionStep, ...] = ()

    def to_dict(self) -> dict:
        out = super().to_dict()
        out['augmentation'] = None if self.augmentation is None else self.augmentation.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict):
        plan = super().from_dict(data)
        aug = data.get('augmentation')
        return dataclasses.replace(plan, augmentation=None if aug is None else AugmentParams.from_dict(aug))


@dataclass(frozen=True)
class PlannedSong:
    """A loaded song and the examples it will yield."""
    song: LoadedSong
    plans: Tuple[ExamplePlan, ...]


@dataclass(frozen=True)
class Waveform:
    """A distinct rendered waveform of a song (a clean target or a context mix) and the
    windows of it that examples need."""
    song_id: str
    waveform_id: str
    audio: np.ndarray
    windows: Tuple[int, ...]
    sample_rate_hz: int


@dataclass(frozen=True)
class Segment:
    """Consecutive windows of a waveform with their encode margins: encode ``audio`` (a fixed
    length for the number of windows, zeros past ``real_samples``) and keep ``frames`` frames
    from each of ``offsets_frames``."""
    windows: Tuple[int, ...]
    audio: np.ndarray
    real_samples: int
    offsets_frames: Tuple[int, ...]
    frames: int


@dataclass(frozen=True)
class ChunkedWaveform:
    song_id: str
    waveform_id: str
    segments: Tuple[Segment, ...]
    window_audio: Dict[int, np.ndarray] = field(default_factory=dict)   # each window alone, with --write-audio


@dataclass(frozen=True)
class EncodedWaveform:
    song_id: str
    waveform_id: str
    codes: Dict[int, np.ndarray]                 # window -> int16 [codebooks, frames]
    scales: Dict[int, float] = field(default_factory=dict)   # window -> input scale (normalising codecs)
    audio_flac: Dict[int, bytes] = field(default_factory=dict)


_NESTED = {('SongRef', 'stems'): StemRef, ('ExamplePlan', 'distortion'): DistortionStep}


def _register_coders():
    """Song-length audio records travel with AudioRecordCoder (see schemas/coders.py); a stage
    that outputs them declares it with ``.with_output_types(<record>)``."""
    from apache_beam import coders
    from schemas.coders import AudioRecordCoder
    for record in (LoadedSong, PlannedSong, Waveform, ChunkedWaveform, Segment):
        coders.registry.register_coder(record, AudioRecordCoder)


_register_coders()
