"""--task=concept on generated audio: folder-labelled clips and stem classes, read back through every
output (WebDataset, Parquet, the concept/ folders, the metadata files) with webdataset, pyarrow,
soundfile and numpy (allow_pickle=False)."""
import glob
import hashlib
import io
import json
import math
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset

from pipelines.build import main, run
from pipelines.run_state import _delete_dataset
from schemas.records import LoadedSong, SongRef, StemRef
from tests.corpus import wav_bytes, write_song
from transforms.chunk import WindowSpec
from transforms.split import parse_ratios, split_of
from transforms.synth import synth_stems
from transforms.tasks.concept import CutFragmentsFn, concept_dir, parse_concepts
from schemas.concept import SCHEMA, ConceptMeta, decode_sample
from transforms.tasks.concept_export import METADATA_FILES

RATE_IN = 44100
CHUNK_SECONDS = 0.64                       # 32 frames at 50 Hz
CHUNK = int(CHUNK_SECONDS * 32000)         # 20480 samples at the codec's rate
RATIOS = '0.5,0.5,0'
FLAGS = ['--task=concept', '--codec-weights=random', f'--chunk-seconds={CHUNK_SECONDS}', f'--split-ratios={RATIOS}',
         '--codec-threads=1']
# label -> {file: (seed, seconds)}; seed None = digital silence. 'Lo-Fi Café' is no safe folder name.
CLIPS = {'ambient': {'calm.wav': (60, 2.0), 'drift.flac': (61, 1.3)},
         'Lo-Fi Café': {'tape.wav': (62, 0.5)},
         'techno': {'pulse.wav': (63, 1.0), 'silent.wav': (None, 1.0)}}


def _mix(seed, seconds):
    if seed is None:
        return np.zeros(int(seconds * RATE_IN), np.float32)
    return (np.sum(list(synth_stems(seed, seconds, RATE_IN).values()), axis=0) / 4).astype(np.float32)


@pytest.fixture(scope='module')
def folders_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('concept-folders') / 'in'
    for label, files in CLIPS.items():
        os.makedirs(root / label)
        for name, (seed, seconds) in files.items():
            sf.write(str(root / label / name), _mix(seed, seconds), RATE_IN,
                     format='FLAC' if name.endswith('.flac') else 'WAV')
    return str(root)


@pytest.fixture(scope='module')
def folders_build(folders_corpus, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('concept-folders-out') / 'out')
    return run([f'--input={folders_corpus}', f'--output={out}', '--source=folders'] + FLAGS)


@pytest.fixture(scope='module')
def stems_build(tmp_path_factory):
    """Two songs of drums, bass, guitar and keys; the first has a second guitar (guitar#2)."""
    base = tmp_path_factory.mktemp('concept-stems')
    second = {'Guitar 2.wav': wav_bytes(synth_stems(70, 1.5, RATE_IN)['guitar'])}
    write_song(str(base / 'in'), 'Ana', 'one', 1, seconds=1.5, extra=second)
    write_song(str(base / 'in'), 'Bo', 'two', 2, seconds=1.0, as_folder=True)
    return run([f'--input={base / "in"}', f'--output={base / "out"}', '--concepts=guitar,bass',
                '--export=audiocraft'] + FLAGS)


def _samples(root):
    found = {}
    for path in sorted(glob.glob(f'{root}/webdataset/*/*.tar')):
        for raw in webdataset.WebDataset(path, shardshuffle=False, empty_check=False):
            found[raw['__key__']] = (path.split('/')[-2], raw)
    return found


def _rows(root):
    return {row['example_id']: row for path in sorted(glob.glob(f'{root}/parquet/*/*.parquet'))
            for row in pq.read_table(path).to_pylist()}


def _check_read_back(root, manifest):
    """Every output of a concept build decodes and agrees; returns (metas by id, codes by id)."""
    codec = manifest['codec']
    samples, rows = _samples(root), _rows(root)
    assert set(samples) == set(rows) and len(samples) == manifest['totals']['examples'] > 0
    metas, codes = {}, {}
    for key, (split, raw) in samples.items():
        assert {k for k in raw if not k.startswith('__')} == {'audio.flac', 'codes.npy', 'json'}
        meta = json.loads(raw['json'])
        assert ConceptMeta.from_dict(meta).to_dict() == meta and meta['example_id'] == key and meta['split'] == split
        audio, rate = sf.read(io.BytesIO(raw['audio.flac']), dtype='float32', always_2d=True)
        assert (rate, audio.shape[1], audio.shape[0]) == (meta['sample_rate_hz'], meta['channels'],
                                                           meta['num_samples'])
        assert (rate, audio.shape[1], audio.shape[0]) == (codec['sample_rate_hz'], codec['channels'], CHUNK)
        assert meta['padded'] == (meta['real_samples'] < CHUNK) and not np.any(audio[meta['real_samples']:])
        assert meta['duration_seconds'] == round(meta['real_samples'] / rate, 6)
        assert meta['real_frames'] == math.ceil(meta['real_samples'] / (rate / codec['frame_rate']))
        array = np.load(io.BytesIO(raw['codes.npy']), allow_pickle=False)
        assert array.dtype == np.int16 and array.shape == (codec['codebooks'], meta['frames'])
        assert meta['frames'] == round(CHUNK_SECONDS * codec['frame_rate'])
        assert 0 <= array.min() and array.max() < codec['codebook_size']
        assert np.array_equal(np.asarray(rows[key]['codes'], np.int16), array)
        decoded = decode_sample(raw)                        # the format's own sample reader agrees
        assert decoded['json'] == meta and np.array_equal(decoded['codes'], array)
        assert np.array_equal(decoded['audio'], audio.T)
        assert {k: v for k, v in rows[key].items() if k != 'codes'} == meta
        metas[key], codes[key] = meta, array
    assert pq.read_schema(glob.glob(f'{root}/parquet/*/*.parquet')[0]).names == SCHEMA.names
    _check_folders(root, manifest, samples, metas, codes)
    return metas, codes


def _check_folders(root, manifest, samples, metas, codes):
    """concept/ files and metadata files: they exist, decode, match the shards and the manifest."""
    listed = {p['path']: p for name, export in manifest['exports'].items() for p in export['paths']
              if not name.startswith('audiocraft')}      # checked by check_audiocraft
    on_disk = {os.path.relpath(p, root) for p in glob.glob(f'{root}/concept/**/*', recursive=True) if os.path.isfile(p)}
    assert on_disk | set(METADATA_FILES.values()) == set(listed)
    for path, entry in listed.items():
        data = open(os.path.join(root, path), 'rb').read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry['bytes'], entry['sha256']), path
    entries = []
    for split, name in METADATA_FILES.items():
        rows = json.load(open(os.path.join(root, name)))
        assert rows == sorted(rows, key=lambda e: (e['concept'], e['track_id'], e['stem'], e['fragment']))
        entries += [(split, e) for e in rows]
    assert len(entries) == len(metas)
    for split, entry in entries:
        key = os.path.splitext(os.path.basename(entry['audio_path']))[0]
        meta = metas[key]
        assert (split, entry['concept'], entry['track_id'], entry['stem'], entry['fragment']) == \
               (meta['split'], meta['concept'], meta['song_id'], meta['stem'], meta['fragment'])
        assert entry['audio_path'] == f'concept/{split}/{meta["concept_dir"]}/audio/{key}.wav'
        assert entry['encoded_path'] == f'concept/{split}/{meta["concept_dir"]}/encoded/{key}.npy'
        wav, rate = sf.read(os.path.join(root, entry['audio_path']), dtype='int16', always_2d=True)
        flac, _ = sf.read(io.BytesIO(samples[key][1]['audio.flac']), dtype='int16', always_2d=True)
        assert rate == meta['sample_rate_hz'] and np.array_equal(wav, flac)
        assert np.array_equal(np.load(os.path.join(root, entry['encoded_path']), allow_pickle=False), codes[key])


def _resampled(seconds):
    return round(seconds * RATE_IN) * 32000 // RATE_IN


def test_folders_build_reads_back_with_one_concept_per_folder(folders_build):
    manifest = folders_build.manifest
    metas, _ = _check_read_back(folders_build.output, manifest)
    by_clip = {}
    for meta in metas.values():
        by_clip.setdefault((meta['concept'], meta['title']), []).append(meta)
    expected = {(label, os.path.splitext(name)[0]): seconds for label, files in CLIPS.items()
                for name, (seed, seconds) in files.items() if seed is not None}
    assert set(by_clip) == set(expected)      # the silent clip yields nothing
    ratios = parse_ratios(RATIOS)
    for clip, seconds in expected.items():
        fragments = sorted(by_clip[clip], key=lambda m: m['fragment'])
        samples = _resampled(seconds)
        assert [m['fragment'] for m in fragments] == list(range(math.ceil(samples / CHUNK)))
        assert [m['real_samples'] for m in fragments] == [min(CHUNK, samples - i * CHUNK)
                                                          for i in range(len(fragments))]
        assert fragments[-1]['padded'] and not any(m['padded'] for m in fragments[:-1])
        assert {(m['stem'], m['instrument'], m['split'], m['concept_dir'], m['codec_weights']) for m in fragments} == \
               {('mix', 'mix', split_of(f'song:{fragments[0]["song_id"]}', ratios), concept_dir(clip[0]), 'random:0')}
    assert concept_dir('Lo-Fi Café').startswith('Lo-Fi_Caf') and os.path.isdir(
        os.path.join(folders_build.output, 'concept', by_clip[('Lo-Fi Café', 'tape')][0]['split'],
                     concept_dir('Lo-Fi Café')))
    assert {m['split'] for m in metas.values()} == {'train', 'validation'}
    assert manifest['counters']['CutFragmentsFn.fragments_silent'] == 2
    assert manifest['counters']['CutFragmentsFn.songs_no_audible_fragment'] == 1
    assert manifest['concept']['label_from'] == 'folder' and manifest['codec']['weights'] == 'random:0'


def test_stem_concepts_are_canonical_classes_filtered_by_concepts(stems_build):
    manifest = stems_build.manifest
    metas, _ = _check_read_back(stems_build.output, manifest)
    stems = {}
    for meta in metas.values():
        stems.setdefault((meta['title'], meta['stem']), []).append(meta)
    assert set(stems) == {('one', 'bass'), ('one', 'guitar'), ('one', 'guitar#2'), ('two', 'bass'), ('two', 'guitar')}
    for (title, _), fragments in stems.items():
        assert len(fragments) == math.ceil(_resampled(1.5 if title == 'one' else 1.0) / CHUNK)
        assert {(m['concept'], m['concept_dir']) for m in fragments} == {(fragments[0]['instrument'],) * 2}
    assert {stems[('one', s)][0]['stem_label'] for s in ('guitar', 'guitar#2')} == {'Guitar', 'Guitar 2'}
    assert manifest['counters']['CutFragmentsFn.stems_not_wanted'] == 4     # drums and keys of both songs
    assert manifest['concept']['concepts'] == ['guitar', 'bass']


def test_same_command_on_the_multi_process_runner_gives_the_same_files(folders_build, folders_corpus, tmp_path):
    again = run([f'--input={folders_corpus}', f'--output={tmp_path / "again"}', '--source=folders',
                 '--direct_running_mode=multi_processing', '--direct_num_workers=2'] + FLAGS)

    def files(manifest):
        shards = {s['path']: s['sha256'] for split in manifest['splits'].values()
                  for found in split['shards'].values() for s in found}
        return dict(shards, **{p['path']: p['sha256'] for e in manifest['exports'].values() for p in e['paths']})

    assert files(again.manifest) == files(folders_build.manifest)


def _song(audio: dict, source='stems') -> LoadedSong:
    stems = tuple(StemRef(instance=n, instrument=n.split('#')[0], member=f'{n}.wav', label=n.title()) for n in audio)
    ref = SongRef(song_id='s1', artist='A', title='t', source=source, input_path='x.zip', container='zip',
                  content_sha256='c', stems=stems)
    return LoadedSong(ref=ref, sample_rate_hz=32000, audio=audio, split='train')


def test_cut_fragments_pads_the_last_drops_silence_and_filters_classes():
    loud = (0.3 * np.sin(np.arange(3 * CHUNK + 100) / 5.0)).astype(np.float32)[None]
    loud[:, CHUNK:2 * CHUNK] = 0.0                                    # fragment 1 silent
    window = WindowSpec(CHUNK_SECONDS, None, 0.0, 32000, 640, keep_partial=True)
    fn = CutFragmentsFn(window, -50.0, False, parse_concepts(['guitar'], False),
                        ('encodec_32khz', 'random:0', 'fp32', 50.0))
    out = list(fn.process(_song({'guitar': loud, 'guitar#2': np.zeros_like(loud), 'bass': loud})))
    assert len(out) == 1
    stem = out[0]
    assert [m.fragment for m in stem.metas] == [0, 2, 3] == [s.windows[0] for s in stem.chunked.segments]
    assert [m.real_samples for m in stem.metas] == [CHUNK, CHUNK, 100] and stem.metas[-1].padded
    assert all(s.audio.shape == (1, CHUNK) and s.offsets_frames == (0,) and s.frames == 32 and len(s.windows) == 1
               for s in stem.chunked.segments)
    assert not np.any(stem.chunked.segments[-1].audio[:, 100:]) and stem.chunked.segments[-1].real_samples == 100
    assert sorted(stem.chunked.window_audio) == [0, 2, 3]
    assert {m.concept for m in stem.metas} == {'guitar'} and len({m.example_id for m in stem.metas}) == 3


def test_concept_folder_names_are_safe_stable_and_distinct():
    for label in ('guitar', 'a b', 'a_b', '..', '../../etc', 'a/b', 'a\\b', '.hidden', '', 'Café', 'x' * 300):
        name = concept_dir(label)
        assert name == concept_dir(label) and name not in ('', '.', '..') and not name.startswith('.')
        assert '/' not in name and '\\' not in name and len(name) <= 80 and name.isascii()
    assert concept_dir('guitar') == 'guitar' and concept_dir('a b') != concept_dir('a_b') == 'a_b'
    assert concept_dir('Café') != concept_dir('Cafe') == 'Cafe'


def test_concepts_flag_is_checked():
    assert parse_concepts(None, False) == () and parse_concepts(['all'], True) == ()
    assert parse_concepts(['Guitar,bass', 'guitar'], False) == ('guitar', 'bass')
    assert parse_concepts(['Lo-Fi Café'], True) == ('lo fi café',)
    with pytest.raises(ValueError, match='unknown class'):
        parse_concepts(['banjo'], False)


@pytest.mark.parametrize('flag', ['--hop-seconds=0.32', '--target-stem=guitar', '--concepts=banjo',
                                  '--fill-missing=reserve', '--chunk-seconds=0.63', '--encode-span-windows=3',
                                  '--encode-margin-seconds=0.5'])
def test_flags_that_do_not_apply_are_refused(flag, tmp_path, capsys):
    flags = [f for f in FLAGS if not (flag.startswith('--chunk') and f.startswith('--chunk'))]
    assert main([f'--input={tmp_path}', f'--output={tmp_path / "out"}'] + flags + [flag]) == 2
    assert 'error:' in capsys.readouterr().err and not os.path.exists(tmp_path / 'out')


def test_overwrite_removes_the_concept_folders_and_metadata(tmp_path):
    for path in ('concept/train/x/audio/a.wav', 'metadata_train.json', 'metadata_val.json', 'keep.txt',
                 'audiocraft/train/a.flac', 'egs/train/data.jsonl', 'README.md', 'counters.json',
                 'folders/setup.yaml', 'spleeter/train.csv', 'descriptor-index/stats.json'):
        os.makedirs(os.path.dirname(tmp_path / path), exist_ok=True)
        (tmp_path / path).write_bytes(b'x')
    _delete_dataset(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['keep.txt']


def test_verify_checks_the_shards_and_the_concept_folders(folders_build):
    from pipelines.verify import run_checks, scan_dataset
    scan = scan_dataset(folders_build.output)
    results = run_checks(scan)
    assert all(ok for _, ok, _ in results), results
    assert [name for name, _, _ in results] == [
        'shards exist', 'shards intact', 'no unlisted shards', 'exports intact', 'example counts', 'samples decode',
        'codes and audio valid', 'formats agree', 'ids unique', 'no leakage']
    assert scan.exports == sum(e['files'] for e in folders_build.manifest['exports'].values()) > 0


def test_verify_reads_every_concept_fragment(stems_build, tmp_path):
    from pipelines.verify import run_checks, scan_dataset
    from schemas.webdataset import npy_bytes, npy_load
    from tests.test_verify import _read_tar, _rewrite_tar
    copy = str(tmp_path / 'copy')
    shutil.copytree(stems_build.output, copy)
    shard = stems_build.manifest['splits']['train']['shards']['webdataset'][0]['path']
    samples = _read_tar(os.path.join(copy, shard))
    codes = npy_load(samples[0]['codes.npy'])
    samples[0]['codes.npy'] = npy_bytes(codes[:, :-1])                       # a frame short
    samples[1]['audio.flac'] = samples[1]['audio.flac'][:-2000]              # cut off: does not decode whole
    _rewrite_tar(copy, shard, samples)
    results = {name: (ok, message) for name, ok, message in run_checks(scan_dataset(copy))}
    failed = [name for name, (ok, _) in results.items() if not ok]
    assert failed == ['samples decode', 'codes and audio valid', 'formats agree']
    frames = stems_build.manifest['concept']['frames']
    assert f'{shard}: {samples[0]["__key__"]} codes: shape {(codes.shape[0], frames - 1)}, expected ' \
           f'{(codes.shape[0], frames)}' in results['codes and audio valid'][1]
    assert f'{samples[0]["__key__"]}: codes differ between WebDataset and Parquet' in results['formats agree'][1]
    assert f'{shard}: {samples[1]["__key__"]}: LibsndfileError' in results['samples decode'][1]


def test_concept_exports_audiocraft_and_datasets_loads_its_card(stems_build):
    from tests.test_trainer_formats import check_audiocraft, load_with_datasets
    lines = check_audiocraft(stems_build.output, stems_build.manifest)
    assert {i['instrument'] for _, _, i in lines} == {'guitar', 'bass'}
    assert all(i['description'].endswith(' solo') for _, _, i in lines)
    load_with_datasets(stems_build.output, stems_build.manifest)
