"""--task=separation on generated stems: chunks, index, folder and Spleeter exports, fill modes, labels.

Sum check tolerance: every file is 24-bit (one step = 2**-23 of full scale), so the mixture and
the sum of N targets, each rounded to its nearest step, differ by at most (N + 1) * 2**-24 per
sample, plus float32 rounding of the sums; the tests allow (N + 1) * 2**-23.
"""
import csv
import glob
import hashlib
import io
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pipelines.build import main, run
from schemas.audio_io import rms_dbfs
from schemas.records import LoadedSong, SongRef, StemRef
from schemas.separation import SeparatedSong, decode_sample
from schemas.webdataset import read_samples
from tests.corpus import wav_bytes, write_song, write_zip
from tests.musdb_reader import import_musdb
from tests.sources.fixtures import make_slakh
from transforms.split import split_of
from transforms.synth import synth_stems
from transforms.tasks.separation import ChunkGeometry, CutChunksFn, SeparateSongFn
from transforms.tasks.separation_targets import assign_stems, member_name, parse_targets

RATE = 44100
RATIOS = '0.34,0.33,0.33'     # Ana -> test, Sol -> train, Fay -> validation (asserted below)
FLAGS = ['--task=separation', '--chunk-seconds=1', f'--split-ratios={RATIOS}']
DEFAULT_TARGETS = ['vocals', 'drums', 'bass', 'other']


def tolerance(targets: int) -> float:
    return (targets + 1) * 2.0 ** -23


def _vocals(seed, seconds):
    return {'Vocals.wav': wav_bytes(synth_stems(seed + 500, seconds, RATE)['guitar'])}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Four songs of 3.5 s: three with vocals (one an unzipped folder, one with a stereo vocal), and
    Fay's without vocals whose last 1.5 s are silent (its third chunk is dropped)."""
    assert [split_of(f'artist:{a}', (0.34, 0.33, 0.33)) for a in ('ana', 'sol', 'fay')] == \
           ['test', 'train', 'validation']
    root = str(tmp_path_factory.mktemp('separation') / 'in')
    write_song(root, 'Ana', 'one', 1, seconds=3.5, extra=_vocals(1, 3.5))
    stereo = synth_stems(502, 3.5, RATE)['guitar']
    write_song(root, 'Ana', 'two', 2, seconds=3.5,
               extra={'Lead Vox.wav': wav_bytes(np.stack([stereo, 0.3 * stereo], axis=1))})
    write_song(root, 'Sol', 'three', 3, seconds=3.5, as_folder=True, extra=_vocals(3, 3.5))
    stems = synth_stems(4, 2.0, RATE)
    silence = np.zeros(int(1.5 * RATE), np.float32)
    write_zip(os.path.join(root, 'Fay', 'four.zip'),
              {f'{name.title()}.wav': wav_bytes(np.concatenate([audio, silence])) for name, audio in stems.items()},
              folder='four')
    return root


def _build(corpus, out, *flags):
    return run([f'--input={corpus}', f'--output={out}'] + FLAGS + list(flags))


@pytest.fixture(scope='module')
def silence_build(corpus, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('silence') / 'out')
    return _build(corpus, out, '--fill-missing=silence', '--export=folders,spleeter-csv')


def _samples(root):
    return {s['__key__']: (path, decode_sample(s)) for path in sorted(glob.glob(f'{root}/webdataset/*/*.tar'))
            for s in read_samples(path)}


def _rows(root):
    return {r['example_id']: r for path in sorted(glob.glob(f'{root}/parquet/*/*.parquet'))
            for r in pq.read_table(path).to_pylist()}


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_chunks_decode_at_the_stated_format_and_the_mixture_is_the_sum(silence_build):
    root, manifest = silence_build.output, silence_build.manifest
    samples = _samples(root)
    assert manifest['task'] == 'separation' and manifest['separation']['targets'] == DEFAULT_TARGETS
    assert len(samples) == manifest['totals']['examples'] == 3 * 3 + 2    # Fay's silent last chunk dropped
    assert set(manifest['splits']) == {'train', 'validation', 'test'}
    gains = set()
    for key, (path, sample) in samples.items():
        meta = sample['json']
        assert meta['example_id'] == key and meta['targets'] == DEFAULT_TARGETS
        assert set(sample) == {'__key__', 'json', 'mixture', *DEFAULT_TARGETS}
        raw = next(s for s in read_samples(path) if s['__key__'] == key)
        info = sf.info(io.BytesIO(raw['mixture.flac']))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (RATE, 2, RATE, 'PCM_24')
        for name in ['mixture'] + DEFAULT_TARGETS:
            assert sample[name].shape == (2, RATE) and sample[name].dtype == np.float32
        error = np.max(np.abs(sample['mixture'] - sum(sample[t] for t in DEFAULT_TARGETS)))
        assert error <= tolerance(4), error
        assert meta['mixture_rms_db'] > -60 and abs(meta['mixture_rms_db'] - rms_dbfs(sample['mixture'])) < 0.01
        gains.add(meta['gain'])
    assert min(gains) < 1.0          # five stems at 0.5 peak clip: every file took the song's gain
    assert silence_build.counters['CutChunksFn.chunks_dropped_silent_mixture'] == 1
    assert silence_build.counters['CutChunksFn.chunks_written'] == len(samples)


def test_missing_target_is_written_as_silence_and_flagged(silence_build):
    samples = _samples(silence_build.output)
    rows = _rows(silence_build.output)
    by_title = {}
    for key, (_, sample) in samples.items():
        by_title.setdefault(sample['json']['title'], []).append(sample)
    assert sorted(by_title) == ['four', 'one', 'three', 'two']
    for title, found in by_title.items():
        for sample in found:
            silent = ['vocals'] if title == 'four' else []
            assert sample['json']['silent_targets'] == silent and rows[sample['__key__']]['silent_targets'] == silent
            if title == 'four':
                assert not np.any(sample['vocals']) and sample['json']['target_rms_db']['vocals'] == -120.0
                assert sample['json']['target_stems']['other'] == ['guitar', 'piano']
    two = by_title['two'][0]['json']
    assert two['target_stems'] == {'vocals': ['vocals'], 'drums': ['drums'], 'bass': ['bass'],
                                   'other': ['guitar', 'piano']}
    assert silence_build.counters['SeparateSongFn.targets_filled_silence'] == 1
    assert silence_build.counters['SeparateSongFn.songs_missing_vocals'] == 1


def test_parquet_index_points_at_each_sample(silence_build):
    root = silence_build.output
    samples, rows = _samples(root), _rows(root)
    assert set(rows) == set(samples)
    for key, row in rows.items():
        path, sample = samples[key]
        assert os.path.join(root, row['webdataset_shard']) == path and row['webdataset_key'] == key
        assert row['start_sample'] == row['chunk_index'] * RATE and row['start_seconds'] == row['chunk_index']
        geometry = (row['num_samples'], row['duration_seconds'], row['sample_rate_hz'], row['channels'])
        assert geometry == (RATE, 1.0, RATE, 2)
        levels = dict(row['target_rms_db'])
        assert list(levels) == DEFAULT_TARGETS and levels == sample['json']['target_rms_db']
        for target in DEFAULT_TARGETS:
            assert abs(max(rms_dbfs(sample[target]), -120.0) - levels[target]) < 0.01
        assert row['folder_path'] == sample['json']['folder_path']
        assert os.path.isdir(os.path.join(root, row['folder_path']))
        assert 'mixture' not in row and not any(isinstance(v, bytes) for v in row.values())


def test_folder_export_holds_whole_tracks_that_the_chunks_come_from(silence_build):
    root, manifest = silence_build.output, silence_build.manifest
    tracks = sorted(glob.glob(f'{root}/folders/*/*'))
    assert len(tracks) == 4
    for track in tracks:
        audio = {}
        for name in ['mixture'] + DEFAULT_TARGETS:
            data, rate = sf.read(f'{track}/{name}.wav', dtype='float32', always_2d=True)
            assert rate == RATE and data.shape == (int(3.5 * RATE), 2)
            assert sf.info(f'{track}/{name}.wav').subtype == 'PCM_24'
            audio[name] = data.T
        assert np.max(np.abs(audio['mixture'] - sum(audio[t] for t in DEFAULT_TARGETS))) <= tolerance(4)
    for _, sample in _samples(root).values():    # a chunk is its track's slice, sample for sample
        meta = sample['json']
        whole, _ = sf.read(os.path.join(root, meta['folder_path'], 'mixture.wav'), dtype='float32', always_2d=True)
        assert np.array_equal(whole.T[:, meta['start_sample']:meta['start_sample'] + RATE], sample['mixture'])
    listed = {p['path']: p for e in manifest['exports'].values() for p in e['paths']}
    on_disk = {os.path.relpath(p, root) for p in glob.glob(f'{root}/folders/**/*', recursive=True) + glob.glob(
        f'{root}/spleeter/*') if os.path.isfile(p)}
    assert set(listed) == on_disk and len(on_disk) == 4 * 5 + 1 + 3
    for path, entry in listed.items():
        assert (entry['bytes'], entry['sha256']) == (os.path.getsize(os.path.join(root, path)),
                                                     _sha(os.path.join(root, path)))


def test_spleeter_csv_parses_and_every_path_exists(silence_build):
    root = silence_build.output
    assert sorted(os.listdir(f'{root}/spleeter')) == ['test.csv', 'train.csv', 'validation.csv']
    counts = {}
    for split in ('train', 'validation', 'test'):
        frame = pd.read_csv(f'{root}/spleeter/{split}.csv')     # as Spleeter's dataset_from_csv reads it
        assert list(frame.columns) == ['mix_path'] + [f'{t}_path' for t in DEFAULT_TARGETS] + ['duration']
        counts[split] = len(frame)
        for row in csv.DictReader(open(f'{root}/spleeter/{split}.csv')):
            for column, value in row.items():
                if column.endswith('_path'):
                    subset = 'test' if split == 'test' else 'train'     # MUSDB keeps validation in train/
                    assert not os.path.isabs(value) and value.startswith(f'folders/{subset}/')
                    path = os.path.join(root, value)    # Spleeter joins audio_path (-d <out>) and the path
                    info = sf.info(path)
                    assert info.samplerate == 44100 and info.channels >= 2
                    assert abs(info.frames / info.samplerate - float(row['duration'])) < 1e-6
            assert row['mix_path'].endswith('/mixture.wav')
    assert counts == {'train': 1, 'validation': 1, 'test': 2}


def test_musdb_reads_the_folder_export_with_our_splits(silence_build, monkeypatch):
    musdb = import_musdb(monkeypatch)
    root = os.path.join(silence_build.output, 'folders')
    rows = {r['folder_path'].split('/')[-1]: r for r in _rows(silence_build.output).values()}
    splits = {track: row['split'] for track, row in rows.items()}
    assert sorted(splits.values()) == ['test', 'test', 'train', 'validation']

    def names(**kwargs):
        return sorted(t.name for t in musdb.DB(root=root, setup_file='setup.yaml', is_wav=True, **kwargs))
    assert names(subsets='train', split='train') == [t for t, s in splits.items() if s == 'train']
    assert names(subsets='train', split='valid') == [t for t, s in splits.items() if s == 'validation']
    assert names(subsets='test') == sorted(t for t, s in splits.items() if s == 'test')
    db = musdb.DB(root=root, setup_file='setup.yaml', is_wav=True)      # both subsets, as trainers list them
    plain = musdb.DB(root=root, is_wav=True)       # musdb's own setup: the same four sources, MUSDB's validation names
    assert sorted(t.name for t in plain) == sorted(splits) and plain.sources_names == ['vocals', 'drums', 'bass', 'other']
    assert not musdb.DB(root=root, is_wav=True, subsets='train', split='valid').tracks
    assert len(db) == 4 and db.sources_names == DEFAULT_TARGETS and db.targets_names == DEFAULT_TARGETS
    for track in db:
        folder = os.path.join(root, track.subset, track.name)
        assert track.subset == ('test' if splits[track.name] == 'test' else 'train')
        assert track.rate == RATE and track.samples == int(3.5 * RATE)
        mixture, _ = sf.read(f'{folder}/mixture.wav', dtype='float64', always_2d=True)
        assert np.array_equal(track.audio, mixture)
        assert track.stems.shape == (1 + len(DEFAULT_TARGETS), int(3.5 * RATE), 2)  # mixture, then stem ids
        for i, name in enumerate(DEFAULT_TARGETS, 1):
            own, _ = sf.read(f'{folder}/{name}.wav', dtype='float64', always_2d=True)
            assert np.array_equal(track.targets[name].audio, own) and np.array_equal(track.stems[i], own)
        assert np.max(np.abs(track.audio - sum(track.targets[t].audio for t in DEFAULT_TARGETS))) <= tolerance(4)
        track.chunk_start, track.chunk_duration = 1.0, 0.5        # what trainers read: random excerpts
        assert np.array_equal(track.targets['drums'].audio,
                              sf.read(f'{folder}/drums.wav', dtype='float64', always_2d=True)[0][RATE:RATE + RATE // 2])


def test_same_build_on_two_workers_gives_the_same_bytes(silence_build, corpus, tmp_path):
    out = str(tmp_path / 'again')
    again = _build(corpus, out, '--fill-missing=silence', '--export=folders,spleeter-csv',
                   '--direct_running_mode=multi_processing', '--direct_num_workers=2')
    for section in ('splits', 'exports', 'totals'):
        assert again.manifest[section] == silence_build.manifest[section], section


def test_skip_mode_leaves_out_songs_lacking_a_target(corpus, tmp_path):
    out = str(tmp_path / 'skip')
    result = _build(corpus, out, '--targets=vocals,drums,bass', '--hop-seconds=0.5')
    samples = _samples(out)
    assert {s['json']['title'] for _, s in samples.values()} == {'one', 'two', 'three'}
    assert result.counters['SeparateSongFn.songs_skipped_missing_target'] == 1
    assert result.counters['SeparateSongFn.songs_missing_vocals'] == 1
    starts = sorted({s['json']['start_sample'] for _, s in samples.values()})
    assert starts == [int(i * RATE / 2) for i in range(6)]          # 1 s chunks every 0.5 s in 3.5 s
    for _, sample in samples.values():
        meta = sample['json']
        assert meta['targets'] == ['vocals', 'drums', 'bass'] and meta['silent_targets'] == []
        assert meta['folder_path'] is None and 'other' not in sample
        # Without other, the mixture still holds every stem: more than the sum of the targets.
        assert np.max(np.abs(sample['mixture'] - sum(sample[t] for t in meta['targets']))) > 0.01
    assert 'exports' not in result.manifest and not os.path.exists(f'{out}/folders')


def test_slakh_target_labels_name_members_and_keep_the_source_names(tmp_path):
    root = str(tmp_path / 'slakh')
    make_slakh(root)
    out = str(tmp_path / 'out')
    result = run([f'--input={root}', f'--output={out}', '--source=slakh', '--task=separation', '--chunk-seconds=1',
                  '--target-labels=Electric Bass (finger)|Distortion Guitar', '--target-labels=Drums',
                  '--targets=other', '--export=folders'])
    names = ['electric_bass_finger', 'distortion_guitar', 'drums', 'other']
    assert result.manifest['separation']['targets'] == names
    samples = _samples(out)
    assert {s['json']['title'] for _, s in samples.values()} == {'Track00001', 'Track00004', 'Track00005',
                                                                   'Track00007'}
    for _, sample in samples.values():
        meta = sample['json']
        assert set(sample) == {'__key__', 'json', 'mixture', *names}
        assert meta['target_labels'] == {'electric_bass_finger': 'Electric Bass (finger)',
                                         'distortion_guitar': 'Distortion Guitar', 'drums': 'Drums',
                                         'other': 'other'}
        other = ['fx', 'piano', 'strings'] if meta['title'] == 'Track00001' else ['piano']
        assert meta['target_stems'] == {'electric_bass_finger': ['bass'], 'distortion_guitar': ['guitar'],
                                        'drums': ['drums'], 'other': other}
        assert np.max(np.abs(sample['mixture'] - sum(sample[t] for t in names))) <= tolerance(4)
    wavs = {os.path.basename(p) for p in glob.glob(f'{out}/folders/*/*/*.wav')}
    assert wavs == {f'{n}.wav' for n in names + ['mixture']}


@pytest.mark.parametrize('flags, message', [
    (['--fill-missing=silence'], '--fill-missing=silence is for --task=separation'),
    (['--task=separation', '--export=spleeter-csv', '--channels=1'], 'Spleeter'),
    (['--task=separation', '--export=spleeter-csv', '--sample-rate=22050'], 'Spleeter'),
    (['--task=separation', '--export=zip'], "unknown export(s) ['zip']"),
    (['--task=separation', '--targets=vocals,kazoo'], "unknown class(es) ['kazoo']"),
    (['--task=separation', '--targets=other'], 'besides other'),
    (['--task=separation', '--target-labels=Strings (continued),strings continued'], 'share the file name'),
    (['--task=separation', '--target-stem=guitar'], '--target-stem: option(s) of --task=continuation'),
    (['--task=separation', '--write-audio'], '--write-audio: option(s) of --task=continuation'),
    (['--task=descriptors', '--target-stem=guitar'], '--target-stem: option(s) of --task=continuation'),
    (['--task=descriptors', '--report'], '--report: option(s) of --task=continuation'),
    (['--task=concept', '--augmentations=2'], '--augmentations: option(s) of --task=continuation'),
    (['--task=separation', '--fill-missing=reserve', '--source=slakh', '--targets=other',
      '--target-labels=Drums'], 'canonical classes'),
    (['--targets=vocals'], '--targets: option(s) of --task=separation'),
    (['--export=folders', '--min-rms-db=-40'], '--min-rms-db: option(s) of --task=separation'),
    (['--export=folders'], "--export: ['folders'] not for --task=continuation"),
    (['--task=separation', '--export=audiocraft'], "unknown export(s) ['audiocraft']"),
])
def test_options_that_would_do_nothing_or_cannot_work_are_refused(tmp_path, capsys, flags, message):
    os.makedirs(tmp_path / 'in')
    assert main([f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}'] + flags) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'out')


def _stem(instance, instrument, label, source_labels=()):
    return StemRef(instance=instance, instrument=instrument, member=f'{instance}.wav', label=label,
                   source_labels=source_labels)


def test_targets_parse_and_stems_go_to_their_finest_matching_target():
    assert member_name('Electric Bass (pick)') == 'electric_bass_pick'
    targets = parse_targets(['other,drums'], ['Bass', 'electric-bass (finger)'])
    assert [(t.name, t.kind) for t in targets] == [('drums', 'class'), ('bass', 'label'),
                                                   ('electric_bass_finger', 'label'), ('other', 'other')]
    stems = [_stem('bass', 'bass', 'Electric Bass (finger)', ('Bass',)),
             _stem('bass#2', 'bass', 'Synth Bass 1', ('Bass',)), _stem('drums', 'drums', 'Drums'),
             _stem('piano', 'piano', 'Acoustic Grand Piano', ('Piano',))]
    assigned, rest = assign_stems(stems, targets)
    assert assigned == {'drums': ['drums'], 'bass': ['bass#2'], 'electric_bass_finger': ['bass'], 'other': ['piano']}
    assert rest == []
    assigned, rest = assign_stems(stems, parse_targets(['drums'], None))
    assert assigned == {'drums': ['drums']} and rest == ['bass', 'bass#2', 'piano']
    assert [t.name for t in parse_targets(None, None)] == DEFAULT_TARGETS


def _loaded(audio: dict, split='train'):
    ref = SongRef(song_id='abcdef0123456789', artist='A', title='t', source='stems', input_path='x', container='zip',
                  content_sha256='0', stems=tuple(_stem(n, n.split('#')[0], n) for n in audio))
    return LoadedSong(ref=ref, sample_rate_hz=100, audio=audio, split=split)


def test_clipping_sum_scales_mixture_and_targets_alike():
    loud = np.full((2, 400), 0.8, np.float32)
    song = _loaded({'vocals': loud, 'drums': loud, 'bass': -0.5 * loud, 'guitar': loud})
    separated = list(SeparateSongFn(parse_targets(None, None), 'skip').process(song))[0]
    targets = dict(separated.targets)
    assert abs(float(np.max(np.abs(separated.mixture))) - 0.99) < 1e-6 and separated.gain < 1
    assert np.allclose(separated.mixture, sum(targets.values()), atol=1e-6)
    assert np.allclose(targets['other'], separated.gain * loud) and separated.target_stems['other'] == ('guitar',)
    assert list(SeparateSongFn(parse_targets(['vocals,piano'], None), 'skip').process(song)) == []


def test_chunks_hop_keep_partial_and_drop_quiet_ones():
    geometry = ChunkGeometry.from_seconds(1.0, 0.5, 100, keep_partial=True)
    assert geometry.starts(260) == [0, 50, 100, 150, 200] and ChunkGeometry(100, 100).starts(99) == []
    quiet = np.zeros((1, 300), np.float32)
    voice = quiet.copy()
    voice[:, :100] = 0.1
    bass = quiet.copy()
    bass[:, 100:200] = 0.1
    song = SeparatedSong(ref=_loaded({'x': quiet}).ref, split='train', sample_rate_hz=100, mixture=voice + bass,
                         targets=(('vocals', voice),), track='t__abcdef01')
    fn = CutChunksFn(ChunkGeometry(100, 100), -60.0, {'vocals': 'vocals'}, (), folders=False)
    kept = list(fn.process(song))
    # Chunk 1 has only bass (no target): every target below; chunk 2 is silent; chunk 0 is kept.
    assert [e.meta.chunk_index for e in kept] == [0]
    assert kept[0].meta.target_rms_db == {'vocals': -20.0} and kept[0].meta.folder_path is None


def test_verify_checks_the_shards_and_every_exported_file(silence_build, tmp_path):
    from pipelines.verify import run_checks, scan_dataset
    results = run_checks(scan_dataset(silence_build.output))
    assert [(name, ok) for name, ok, _ in results] == [
        ('shards exist', True), ('shards intact', True), ('no unlisted shards', True), ('exports intact', True),
        ('example counts', True), ('samples decode', True), ('audio valid', True), ('formats agree', True),
        ('ids unique', True), ('no leakage', True)]
    copy = str(tmp_path / 'copy')
    shutil.copytree(silence_build.output, copy)
    wav = sorted(glob.glob(f'{copy}/**/*.wav', recursive=True))[0]
    with open(wav, 'r+b') as f:
        f.seek(-1, os.SEEK_END)
        f.write(b'\x01' if f.read(1) != b'\x01' else b'\x02')
    os.remove(glob.glob(f'{copy}/spleeter/train.csv')[0])
    results = {name: (ok, message) for name, ok, message in run_checks(scan_dataset(copy))}
    assert not results['exports intact'][0] and results['shards intact'][0]
    assert os.path.relpath(wav, copy) in results['exports intact'][1]
    assert 'missing: spleeter/train.csv' in results['exports intact'][1]


def test_datasets_loads_the_card_of_a_separation_build(silence_build):
    from tests.test_trainer_formats import load_with_datasets
    load_with_datasets(silence_build.output, silence_build.manifest)


def test_verify_reads_every_separation_chunk_and_index_row(silence_build, tmp_path):
    from pipelines.verify import run_checks, scan_dataset
    from schemas.audio_io import encode_pcm24
    from tests.test_verify import _read_tar, _rewrite_listed, _rewrite_tar
    copy = str(tmp_path / 'copy')
    shutil.copytree(silence_build.output, copy)
    shards = silence_build.manifest['splits']['train']['shards']
    tar, index = shards['webdataset'][0]['path'], shards['parquet'][0]['path']
    samples = _read_tar(os.path.join(copy, tar))
    drums, rate = sf.read(io.BytesIO(samples[0]['drums.flac']), dtype='float32', always_2d=True)
    samples[0]['drums.flac'] = encode_pcm24((drums * 0.5 + 0.01).T, rate)      # no longer sums to the mixture
    mixture, _ = sf.read(io.BytesIO(samples[1]['mixture.flac']), dtype='float32', always_2d=True)
    samples[1]['mixture.flac'] = encode_pcm24(mixture[:RATE // 2].T, rate)     # half a chunk
    _rewrite_tar(copy, tar, samples)
    table = pq.read_table(os.path.join(copy, index))
    keys = table.column('webdataset_key').to_pylist()
    table = table.set_column(table.schema.get_field_index('webdataset_key'), 'webdataset_key',
                             pa.array(['elsewhere'] + keys[1:]))
    out = io.BytesIO()
    pq.write_table(table, out)
    _rewrite_listed(copy, index, out.getvalue())
    results = {name: (ok, message) for name, ok, message in run_checks(scan_dataset(copy))}
    assert [name for name, (ok, _) in results.items() if not ok] == ['audio valid']
    message = results['audio valid'][1]
    assert f'{tar}: {samples[0]["__key__"]} the mixture differs from the sum of the targets by up to' in message
    assert f'{tar}: {samples[1]["__key__"]} mixture: {RATE} Hz, 2 channel(s), {RATE // 2} samples; the manifest ' \
           f'says {RATE} Hz, 2, {RATE}' in message
    assert f'{index}: {keys[0]}: the index points at {tar}:elsewhere' in message
