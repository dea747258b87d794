"""``--task=concept``: reference clips for conditioning (textual inversion, DreamBooth-style
fine-tuning of MusicGen and the like).

Per song: CutFragments (every concept stem cut into ``--chunk-seconds`` fragments, default 5,
the last one padded with zeros to the full length; a fragment whose real audio is below
``--silence-db`` is dropped and counted) -> EncodeChunks (each fragment encoded as its own
clip, one segment of one length, batched with fragments of any stem and song, with the
--resume cache) -> JoinFragments (each fragment's meta with its codes). A fragment's concept is its folder's name with
``--source=folders``, else its stem's canonical class (``guitar`` and ``guitar#2`` are both
``guitar``); ``--concepts`` keeps some. Audio is decoded at the codec's rate and channel count.
The format (records, shards, verify's check) is schemas/concept.py; the folder/metadata exports
concept_export.py.
"""
import dataclasses
import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Optional, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import rms_dbfs
from schemas.ids import stable_id
from schemas.records import ChunkedWaveform, LoadedSong
from schemas.shards import plan_document, work_path, write_atomic
from schemas.taxonomy import CANONICAL_CLASSES, WHOLE_MIX, instrument_of, normalize_label
from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings
from transforms.codec_runtime import identity as codec_identity
from transforms.codec_options import MARGIN_SECONDS, SPAN_WINDOWS, codec_manifest, codec_settings
from transforms.encode import EncodeChunks
from transforms.failures import FAILED, contained
from transforms.tasks.audiocraft_export import (AUDIOCRAFT_FOLDERS, ExportAudiocraft, concept_item,
                                                parse_audiocraft_export)
from schemas.concept import CHECK, WRITERS, ConceptFragment, ConceptMeta, sample_bytes
from transforms.tasks.concept_export import CONCEPT_ROOT, LAYOUT, METADATA_FILES, ExportConcepts, concept_counts
from transforms.tasks.task import RECORDS, Task

MAX_DIR_CHARS = 64


class ConceptOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--concepts', action='append', default=None,
                            help='--task=concept: only these concepts, comma-separated or repeated: folder names '
                                 'with --source=folders (case, "_" and "-" do not matter), canonical classes '
                                 f'otherwise ({", ".join(c for c in CANONICAL_CLASSES if c != WHOLE_MIX)}). '
                                 'Default: all.')


def concept_dir(label: str) -> str:
    """A concept label as one path component, the same on every machine: ASCII letters, digits,
    '.', '_' and '-' (every run of anything else one '_'), no leading or trailing dot, at most
    MAX_DIR_CHARS. A label changed on the way (or left empty) gets 8 hex digits of its sha256, so
    two labels never share a folder ('a b' -> 'a_b-…', 'a_b' -> 'a_b'); never '..' nor a separator."""
    label = str(label)
    text = unicodedata.normalize('NFKD', label).encode('ascii', 'ignore').decode('ascii')
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', text).strip('._')[:MAX_DIR_CHARS].strip('._')
    if safe != label or not safe:
        safe = f'{safe or "concept"}-{hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]}'
    return safe


def parse_concepts(values, from_folder: bool) -> tuple:
    """--concepts values -> normalised names to keep; () keeps every concept.

    Raises:
        ValueError: a name that is not a canonical class (when concepts are classes).
    """
    names = [v.strip() for value in values or () for v in value.split(',') if v.strip()]
    if not names or 'all' in (n.lower() for n in names):
        return ()
    if not from_folder:
        lowered = {n.lower() for n in names}
        unknown = sorted(lowered - set(CANONICAL_CLASSES) | ({WHOLE_MIX} & lowered))
        if unknown:
            raise ValueError(f'--concepts: unknown class(es) {unknown}; choose from '
                             f'{[c for c in CANONICAL_CLASSES if c != WHOLE_MIX]} (folder names need --source=folders)')
    return tuple(dict.fromkeys(normalize_label(n) for n in names))


def concept_of(song: LoadedSong, instance: str, from_folder: bool) -> Tuple[str, Optional[str]]:
    """(concept label, the source's own name of the stem): its folder's name with --source=folders
    (kept on the stem's label by ReadAudioFolders), else the stem's canonical class."""
    stem = next((s for s in song.ref.stems if s.instance == instance), None)
    if from_folder:
        return (stem.label if stem else instance), (stem.label if stem else None)
    return (stem.instrument if stem else instrument_of(instance)), (stem.label if stem else None)


@dataclass(frozen=True)
class ConceptStem:
    """One concept stem of a song before encoding: the segments the codec sees (each a whole
    fragment; the last one padded) and every kept fragment's metadata, in window order."""
    chunked: ChunkedWaveform
    metas: Tuple[ConceptMeta, ...]


class CutFragmentsFn(beam.DoFn):
    """LoadedSong -> ConceptStem per wanted stem with an audible fragment. The kept fragments of
    every stem are recorded in ``plans_root`` first (the progress line reads them)."""

    def __init__(self, window: WindowSpec, silence_db: float, from_folder: bool, concepts: tuple, codec: tuple,
                 plans_root: str = None):
        self.window = window
        self.silence_db = silence_db
        self.from_folder = from_folder
        self.concepts = concepts
        self.codec = codec               # (name, weights id, precision, frame rate): in ids and metadata
        self.plans_root = plans_root
        self.fragments_kept = Metrics.counter(self.__class__, 'fragments_kept')
        self.fragments_silent = Metrics.counter(self.__class__, 'fragments_silent')
        self.stems_not_wanted = Metrics.counter(self.__class__, 'stems_not_wanted')
        self.songs_no_concept = Metrics.counter(self.__class__, 'songs_no_concept')
        self.songs_no_audible = Metrics.counter(self.__class__, 'songs_no_audible_fragment')

    @contained('cut', lambda song: song.ref.song_id)
    def process(self, song: LoadedSong):
        wanted = []
        for instance in sorted(song.audio):
            concept, stem_label = concept_of(song, instance, self.from_folder)
            if self.concepts and normalize_label(concept) not in self.concepts:
                self.stems_not_wanted.inc()
                continue
            wanted.append((instance, concept, stem_label, self._audible(song.audio[instance])))
        if not wanted:
            self.songs_no_concept.inc()
            return
        kept = {stable_id('concept-stem', song.ref.song_id, i): len(k) for i, _, _, k in wanted if k}
        if not kept:
            self.songs_no_audible.inc()
            return
        if self.plans_root:
            write_atomic(FileSystems.join(self.plans_root, f'{song.ref.song_id}.json'),
                         plan_document(kept, sum(kept.values())))
        for instance, concept, stem_label, audible in wanted:
            if audible:
                yield self._stem(song, instance, concept, stem_label, audible)

    def _audible(self, audio: np.ndarray) -> list:
        """Indices of the fragments whose real audio is at or above --silence-db."""
        chunk, kept = self.window.chunk, []
        for index, start in enumerate(self.window.starts(audio.shape[-1])):
            if rms_dbfs(audio[:, start:start + chunk]) < self.silence_db:
                self.fragments_silent.inc()
            else:
                kept.append(index)
        self.fragments_kept.inc(len(kept))
        return kept

    def _stem(self, song: LoadedSong, instance: str, concept: str, stem_label, fragments: list) -> ConceptStem:
        audio, ref = song.audio[instance], song.ref
        name, weights, precision, frame_rate = self.codec
        chunk, hop, rate = self.window.chunk, self.window.hop_length, song.sample_rate_hz
        metas = []
        for index in fragments:
            start = index * self.window.hop
            real = min(chunk, audio.shape[-1] - start)
            metas.append(ConceptMeta(
                example_id=stable_id('concept', ref.song_id, instance, concept, index, chunk, rate, name, weights,
                                     precision),
                song_id=ref.song_id, split=song.split, concept=concept, concept_dir=concept_dir(concept),
                source=ref.source, artist=ref.artist, title=ref.title, stem=instance,
                instrument=instrument_of(instance), stem_label=stem_label, fragment=index,
                start_seconds=round(start / rate, 6), duration_seconds=round(real / rate, 6), padded=real < chunk,
                num_samples=chunk, real_samples=real, sample_rate_hz=rate, channels=audio.shape[0],
                frames=self.window.frames, real_frames=math.ceil(real / hop), codec=name, codec_weights=weights,
                frame_rate=frame_rate))
        chunked = self.window.chunked(ref.song_id, stable_id('concept-stem', ref.song_id, instance), audio,
                                      fragments, keep_audio=True)
        return ConceptStem(chunked=chunked, metas=tuple(metas))


class JoinFragmentsFn(beam.DoFn):
    """(stem key, {'metas': [metas], 'encoded': [EncodedWaveform parts]}) -> ConceptFragment per
    fragment whose codes arrived (a stem whose encode failed is in errors/)."""

    @contained('assemble', lambda element: element[0][0])
    def process(self, element):
        _, grouped = element
        codes, scales, flac = {}, {}, {}
        for part in grouped['encoded']:
            codes.update(part.codes)
            scales.update(part.scales)
            flac.update(part.audio_flac)
        for metas in grouped['metas']:
            for meta in metas:
                if meta.fragment in codes:
                    yield ConceptFragment(meta=dataclasses.replace(meta, scale=scales.get(meta.fragment)),
                                          codes=codes[meta.fragment], audio_flac=flac[meta.fragment])


def check_flags(args) -> None:
    """Rejects flags this task would silently ignore.

    Raises:
        ValueError: overlapping fragments, margins, or a fill mode (other tasks' flags: check_task_flags).
    """
    if args.hop_seconds is not None and args.hop_seconds != args.chunk_seconds:
        raise ValueError('--task=concept cuts fragments end to end: --hop-seconds does not apply')
    if args.fill_missing != 'skip':
        raise ValueError(f'--fill-missing={args.fill_missing}: --task=concept encodes the stems songs have; '
                         'use skip')
    if args.encode_span_windows != SPAN_WINDOWS or args.encode_margin_seconds != MARGIN_SECONDS:
        raise ValueError('--task=concept encodes each fragment as its own clip: --encode-span-windows and '
                         '--encode-margin-seconds do not apply')


@dataclass(frozen=True)
class ConceptConfig:
    """What the concept task reads from the flags, checked once."""
    codec: CodecSettings
    batch_size: int                  # --encode-batch-size (0: the codec's default)
    window: WindowSpec               # one fragment: --chunk-seconds, no hop, no margin
    chunk_seconds: float
    silence_db: float
    from_folder: bool                # the concept is the folder's name (--source=folders)
    concepts: Tuple[str, ...]        # (): every concept
    audiocraft: bool
    output: str

    @classmethod
    def from_args(cls, args, beam_options) -> 'ConceptConfig':
        check_flags(args)
        codec = codec_settings(args, beam_options)
        from_folder = args.source == 'folders'
        return cls(codec=codec, batch_size=args.encode_batch_size,
                   window=WindowSpec(args.chunk_seconds, None, 0.0, codec.spec.sample_rate_hz, codec.spec.hop_length,
                                     keep_partial=True),
                   chunk_seconds=args.chunk_seconds, silence_db=args.silence_db, from_folder=from_folder,
                   concepts=parse_concepts(args.concepts, from_folder),
                   audiocraft=parse_audiocraft_export(args.export, ConceptTask.NAME), output=args.output)


class ConceptTask(Task):
    NAME = 'concept'
    CONFIG = ConceptConfig
    DEFAULTS = {'chunk_seconds': 5.0}
    OPTIONS = (ConceptOptions,)
    WRITERS = WRITERS
    CHECK = CHECK
    SHARED_OPTIONS = ('export',)             # declared by SeparationOptions; audiocraft here
    OUTPUT_FOLDERS = (CONCEPT_ROOT,) + AUDIOCRAFT_FOLDERS
    OUTPUT_FILES = tuple(METADATA_FILES.values())
    size_of = staticmethod(sample_bytes)

    def __init__(self, config: ConceptConfig):
        super().__init__(config)
        self.codec, self.window = config.codec, config.window

    def audio_format(self) -> tuple:
        return self.codec.spec.sample_rate_hz, self.codec.spec.channels

    def shaping(self) -> dict:
        return {'codec': codec_identity(self.codec, self.config.batch_size)}

    def random_codec_seed(self):
        return self.codec.seed if self.codec.weights == 'random' else None

    def manifest_info(self) -> dict:
        config = self.config
        return {'codec': codec_manifest(self.codec, config.batch_size), 'concept': {
            'label_from': 'folder' if config.from_folder else 'stem class',
            'concepts': list(config.concepts) or 'all', 'chunk_seconds': config.chunk_seconds,
            'chunk_samples': self.window.chunk, 'frames': self.window.frames, 'silence_db': config.silence_db,
            'padding': 'the last fragment of a stem is padded with zeros to chunk_samples; duration_seconds, '
                       'real_samples and real_frames give its real length',
            'layout': LAYOUT, 'metadata': METADATA_FILES}}

    def expand(self, songs):
        config, codec = self.config, self.codec
        cut = songs | 'CutFragments' >> beam.ParDo(CutFragmentsFn(
            self.window, config.silence_db, config.from_folder, config.concepts,
            (codec.name, codec.weights_id, codec.precision, codec.spec.frame_rate),
            plans_root=work_path(config.output, 'plans'))).with_outputs(FAILED, main='stems')
        stems = cut.stems
        key = lambda waveform: (waveform.song_id, waveform.waveform_id)   # noqa: E731
        encoded = (stems
                   | 'Fragments' >> beam.Map(lambda stem: stem.chunked).with_output_types(ChunkedWaveform)
                   | 'EncodeChunks' >> EncodeChunks(codec, config.batch_size, write_audio=True,
                                                  cache_root=work_path(config.output, 'codes')))
        fragments = ({'metas': stems | 'KeyMetas' >> beam.Map(lambda stem: (key(stem.chunked), stem.metas)),
                      'encoded': encoded['encoded'] | 'KeyParts' >> beam.Map(lambda part: (key(part), part))}
                     | 'GroupByStem' >> beam.CoGroupByKey()
                     | 'JoinFragments' >> beam.ParDo(JoinFragmentsFn()).with_outputs(FAILED, main='fragments'))
        failures = (cut[FAILED], encoded[FAILED], fragments[FAILED]) | 'ConceptFailures' >> beam.Flatten()
        return {RECORDS: fragments.fragments, FAILED: failures}

    def exports(self, records, root: str):
        exported = records | 'ExportConcepts' >> ExportConcepts(root)
        if self.config.audiocraft:
            exported += records | 'ExportAudiocraft' >> ExportAudiocraft(root, concept_item)
        return exported

    def summary(self, manifest: dict, metrics: dict) -> list:
        get = lambda name: int(metrics.get(name, 0))
        lines = [f'fragments: {get("CutFragmentsFn.fragments_kept")} kept, {get("CutFragmentsFn.fragments_silent")} '
                 f'dropped as silent (below {self.config.silence_db:g} dBFS); stems of other concepts: '
                 f'{get("CutFragmentsFn.stems_not_wanted")}']
        for split, counts in concept_counts(manifest).items():
            lines.append(f'{split} concepts: ' + ', '.join(f'{k}={v}' for k, v in counts.items()))
        for name, export in manifest.get('exports', {}).items():
            lines.append(f'export {name}: {export["files"]} file(s), {export["bytes"] / 1e6:.1f} MB')
        return lines
