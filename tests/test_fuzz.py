"""Seeded adversarial inputs: 300 mutations of valid stem archives, WAV and FLAC headers and
corpus metadata (truncations, flipped bytes, lying sizes, huge declared lengths). The source
and decoding stages must turn every one into a song or error records with a stage, never an
exception, never more audio than the limits allow; one build over a sample of them completes
the good songs, logs the bad ones, writes nothing outside its output and leaves the inputs as
they were."""
import glob
import io
import os
import random
import shutil
import struct
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pipelines.build import run
from schemas.manifest import read_errors
from schemas.records import FailedRecord, LoadedSong, SongRef
from tests.conftest import FAST_FLAGS
from tests.corpus import tree_fingerprint, write_song
from tests.sources.fixtures import _moises_track, write_slakh_track
from transforms.decode import LoadStemsFn
from transforms.sources.moisesdb import ListMoisesDbFn, ReadMoisesDbTrackFn
from transforms.sources.slakh import ListSlakhFn, ReadSlakhTrackFn
from transforms.sources.stems import ReadSongRefFn

RATE, MAX_SECONDS, LIMIT = 44100, 4.0, 16 * 2**20
COUNTS = {'wav': 80, 'flac': 60, 'zip': 90, 'slakh': 35, 'moisesdb': 35}   # 300 in all


def _audio(seed, seconds=0.5, channels=2):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((int(RATE * seconds), channels))).astype(np.float32)


def _encoded(fmt, seed):
    buf = io.BytesIO()
    sf.write(buf, _audio(seed), RATE, format=fmt, subtype='PCM_16')
    return buf.getvalue()


def _lie_wav(data: bytes, rng) -> bytes:
    """Header fields that lie: sizes, channels, rate, block alignment."""
    data = bytearray(data)
    fmt_at, data_at = data.find(b'fmt '), data.find(b'data')
    field = rng.choice(['riff', 'data', 'channels', 'rate', 'align', 'bits', 'all'])
    if field in ('riff', 'all'):
        data[4:8] = struct.pack('<I', rng.choice([0, 1, 0xFFFFFFFF, len(data) * 1000]))
    if field in ('data', 'all'):
        data[data_at + 4:data_at + 8] = struct.pack('<I', rng.choice([0, 3, 0xFFFFFFF0, 2**31]))
    if field in ('channels', 'all'):
        data[fmt_at + 10:fmt_at + 12] = struct.pack('<H', rng.choice([0, 8, 255, 65535]))
    if field in ('rate', 'all'):
        data[fmt_at + 12:fmt_at + 16] = struct.pack('<I', rng.choice([0, 1, 384000, 0xFFFFFFFF]))
    if field == 'align':
        data[fmt_at + 20:fmt_at + 22] = struct.pack('<H', rng.choice([0, 1, 65535]))
    if field == 'bits':
        data[fmt_at + 22:fmt_at + 24] = struct.pack('<H', rng.choice([0, 7, 64, 65535]))
    return bytes(data)


def _lie_flac(data: bytes, rng) -> bytes:
    """STREAMINFO that lies: rate, channels, total samples (huge declared lengths), block sizes."""
    data = bytearray(data)
    info = 8   # 'fLaC' + block header
    # bytes 10..17 of STREAMINFO: 20 bits rate, 3 bits channels-1, 5 bits bits-1, 36 bits total samples
    packed = int.from_bytes(data[info + 10:info + 18], 'big')
    rate, channels, total = packed >> 44, (packed >> 41) & 7, packed & (2**36 - 1)
    field = rng.choice(['rate', 'channels', 'total', 'blocks', 'all'])
    if field in ('rate', 'all'):
        rate = rng.choice([0, 1, 384000, 2**20 - 1])
    if field in ('channels', 'all'):
        channels = 7      # 8 channels
    if field in ('total', 'all'):
        total = rng.choice([2**36 - 1, 384000 * 1800, 1])
    if field == 'blocks':
        data[info:info + 4] = rng.choice([b'\xff\xff\xff\xff', b'\x00\x00\x00\x00'])
    packed = (rate << 44) | (channels << 41) | (packed & (31 << 36)) | total
    data[info + 10:info + 18] = packed.to_bytes(8, 'big')
    return bytes(data)


def _lie_zip(data: bytes, rng) -> bytes:
    """Central directory and end record fields that lie."""
    data = bytearray(data)
    central = data.find(b'PK\x01\x02')
    end = data.rfind(b'PK\x05\x06')
    field = rng.choice(['usize', 'csize', 'name_len', 'offset', 'count', 'cd_offset', 'method'])
    value32 = rng.choice([0, 1, 0xFFFFFFFF, 2**31, 10**9])
    if field == 'usize':
        data[central + 24:central + 28] = struct.pack('<I', value32)
    elif field == 'csize':
        data[central + 20:central + 24] = struct.pack('<I', value32)
    elif field == 'name_len':
        data[central + 28:central + 30] = struct.pack('<H', rng.choice([0, 65535, 300]))
    elif field == 'offset':
        data[central + 42:central + 46] = struct.pack('<I', value32)
    elif field == 'count':
        data[end + 10:end + 12] = struct.pack('<H', rng.choice([0, 65535]))
    elif field == 'cd_offset':
        data[end + 16:end + 20] = struct.pack('<I', value32)
    else:
        data[central + 10:central + 12] = struct.pack('<H', rng.choice([1, 12, 14, 99, 65535]))
    return bytes(data)


def _mutate_bytes(data: bytes, rng, lie) -> bytes:
    kind = rng.choice(['truncate', 'flip', 'splice', 'lie', 'lie', 'empty'])
    if kind == 'truncate':
        return data[:rng.randrange(0, len(data))]
    if kind == 'flip':
        out = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(min(len(out), 200) if rng.random() < 0.7 else len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 'splice':
        at = rng.randrange(len(data))
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[at + 1:]
    if kind == 'empty':
        return b''
    return lie(data, rng)


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _mutate_text(text: str, rng) -> str:
    kind = rng.choice(['truncate', 'flip', 'types', 'bomb', 'huge', 'empty'])
    if kind == 'truncate':
        return text[:rng.randrange(len(text))]
    if kind == 'flip':
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = rng.choice('{}[]:,"\'&*!|>-\n\t\x00')
        return ''.join(chars)
    if kind == 'types':   # every value of a key turned into another type
        key = rng.choice(['stems', 'inst_class', 'audio_rendered', 'tracks', 'stemName', 'extension', 'id',
                          'program_num', 'is_drum'])
        return text.replace(f'{key}:', f'{key}: [1, 2, {{"a": null}}]\n  x{key}:').replace(
            f'"{key}": ', f'"{key}": {rng.choice(["null", "5", "[]", "{}", chr(34) * 2])}, "x{key}": ')
    if kind == 'bomb':     # YAML aliases that expand exponentially; JSON nested thousands deep
        return ('a: &a ["x","x","x","x","x","x","x","x","x"]\n' + ''.join(
            f'{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n' for p, c in zip('abcdefgh', 'bcdefghi'))
            if rng.random() < 0.5 else '[' * 100000 + ']' * 100000)
    if kind == 'huge':
        return text + '\n# ' + 'x' * (3 * 2**20)
    return ''


def _case(kind: str, index: int, root: str):
    """Writes mutated input ``index`` of ``kind`` under ``root``; returns (source, path)."""
    rng = random.Random(f'{kind}-{index}')
    folder = os.path.join(root, f'{kind}{index:03d}')
    if kind in ('wav', 'flac'):
        data = _mutate_bytes(_encoded(kind.upper(), index), rng, _lie_wav if kind == 'wav' else _lie_flac)
        members = {f'Guitar.{kind}': data, 'Drums.wav': _encoded('WAV', 1000 + index)}
        path = os.path.join(folder, 'Artist', 'Song.zip')
        os.makedirs(os.path.dirname(path))
        with open(path, 'wb') as f:
            f.write(_zip(members))
        return 'stems', path
    if kind == 'zip':
        data = _mutate_bytes(_zip({'Song/Guitar.wav': _encoded('WAV', index), 'Song/Bass.flac': _encoded('FLAC', index)}),
                             rng, _lie_zip)
        path = os.path.join(folder, 'Artist', 'Song.zip')
        os.makedirs(os.path.dirname(path))
        with open(path, 'wb') as f:
            f.write(data)
        return 'stems', path
    if kind == 'slakh':
        track = os.path.join(folder, 'Track00001')
        write_slakh_track(track, index, 'Track00001', seconds=0.5)
        meta = os.path.join(track, 'metadata.yaml')
    else:
        _moises_track(folder, 'uuid-1', 'Ada', 'Song', {'bass': {'t1': ('bass', 'bass', False)},
                                                         'drums': {'t2': ('drums', 'drums', False)}}, index, seconds=0.5)
        meta = os.path.join(folder, 'uuid-1', 'data.json')
    with open(meta, encoding='utf-8') as f:
        text = f.read()
    with open(meta, 'w', encoding='utf-8') as f:
        f.write(_mutate_text(text, rng))
    return kind, folder


def _refs(source: str, path: str):
    """What the source stage makes of one input: SongRefs and FailedRecords."""
    if source == 'stems':
        root = os.path.dirname(os.path.dirname(path))
        return list(ReadSongRefFn(LIMIT).process((root, 'zip', path)))
    lister, reader = ((ListSlakhFn(False), ReadSlakhTrackFn()) if source == 'slakh'
                      else (ListMoisesDbFn(), ReadMoisesDbTrackFn(False)))
    return [out for files in lister.process(path) for out in reader.process(files)]


def _outcome(source, path):
    """(songs loaded, failures) of one input through the source and LoadStems; raises what escapes."""
    load = LoadStemsFn(sample_rate_hz=32000, channels=1, max_song_seconds=MAX_SECONDS, limit_bytes=LIMIT)
    songs, failures = [], []
    for out in _refs(source, path):
        if isinstance(out, SongRef):
            for loaded in load.process(out):
                (songs if isinstance(loaded, LoadedSong) else failures).append(loaded)
        else:
            failures.append(out)
    return songs, [f.value for f in failures]


@pytest.fixture(scope='module')
def cases(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fuzz'))
    made = [(kind, i) + _case(kind, i, root) for kind, count in COUNTS.items() for i in range(count)]
    assert len(made) == 300
    return root, made


def test_every_mutation_is_a_song_or_an_error_record(cases):
    _, made = cases
    crashes, outcomes = [], {'song': 0, 'errors': 0, 'nothing': 0}
    for kind, index, source, path in made:
        try:
            songs, failures = _outcome(source, path)
        except Exception as e:   # noqa: BLE001 - the finding
            crashes.append(f'{kind}{index:03d}: {type(e).__name__}: {e}'[:300])
            continue
        for record in failures:
            assert isinstance(record, FailedRecord) and record.stage in ('read', 'decode') and record.message
            assert record.input.startswith(os.path.dirname(path)) or record.input.startswith(path)
        for song in songs:
            for audio in song.audio.values():
                assert audio.shape[0] == 1 and audio.shape[-1] <= MAX_SECONDS * 32000 + 1
                assert np.isfinite(audio).all()
        outcomes['song' if songs else 'errors' if failures else 'nothing'] += 1
    assert not crashes, f'{len(crashes)} crash(es): ' + '; '.join(crashes[:10])
    assert outcomes['nothing'] == 0, outcomes           # an input is never dropped without a word
    assert outcomes['errors'] >= 100, outcomes          # the mutations do break things


def test_a_build_over_mutated_inputs_completes_the_good_songs(cases, tmp_path):
    _, made = cases
    root = tmp_path / 'in'
    write_song(str(root), 'Good', 'alpha', 1)
    write_song(str(root), 'Good', 'beta', 2)
    picked = [m for m in made if m[2] == 'stems'][::12]
    for kind, index, _, path in picked:
        os.makedirs(root / f'Fuzz{kind}', exist_ok=True)
        shutil.copy(path, root / f'Fuzz{kind}' / f'{kind}{index:03d}.zip')
    before = tree_fingerprint(str(root))
    outside = sorted(os.listdir(tmp_path))
    result = run([f'--input={root}', f'--output={tmp_path / "out"}', f'--max-song-seconds={MAX_SECONDS}',
                  '--max-uncompressed-mb=16'] + FAST_FLAGS + ['--augmentations=0', '--assortments=1'])
    assert tree_fingerprint(str(root)) == before                     # inputs untouched
    assert sorted(os.listdir(tmp_path)) == sorted(outside + ['out'])  # nothing written beside the output
    errors = read_errors(str(tmp_path / 'out'))
    assert all(e['stage'] in ('read', 'decode') and e['message'] for e in errors)
    logged = {os.path.basename(e['input'].split('::')[0]) for e in errors}
    for kind, index, source, path in picked:      # what failed alone fails in the build, and is logged
        if _outcome(source, path)[1]:
            assert f'{kind}{index:03d}.zip' in logged
    rows = [r for p in glob.glob(f'{tmp_path}/out/parquet/*/*.parquet') for r in pq.read_table(p).to_pylist()]
    for title in ('alpha', 'beta'):                                   # the good songs, every target
        assert {r['target_stem'] for r in rows if r['title'] == title} == {'guitar', 'bass'}
    assert result.counters['LoadStemsFn.stems_decoded'] >= 8          # both good songs whole
