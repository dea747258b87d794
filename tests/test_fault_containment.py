"""A song that fails at any stage after LoadStems is logged with its stage and left out whole;
every other song's examples are byte-identical to a run without the fault."""
import glob

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.build import run
from schemas.manifest import read_errors
from schemas.webdataset import read_samples
from tests.conftest import FAST_FLAGS
from tests.corpus import write_song
from transforms.tasks.continuation.assemble import AttachCodesFn
from transforms.failures import FAULTS_ENV, FAILED

STAGES = ('render', 'augment', 'distort', 'chunk', 'encode', 'assemble', 'write')
TITLES = [f'song{i}' for i in range(len(STAGES) + 2)]
FLAGS = FAST_FLAGS + ['--encode-batch-size=4', '--split-ratios=1,0,0', '--target-stem=guitar', '--augmentations=0',
                      '--assortments=1']


def _plain(sample: dict) -> dict:
    """A decoded sample with arrays as (dtype, shape, bytes), for comparing byte for byte."""
    return {k: (v.dtype.str, v.shape, v.tobytes()) if isinstance(v, np.ndarray) else v
            for k, v in sample.items() if not k.startswith('__')}


def _by_title(root):
    rows = [r for p in sorted(glob.glob(f'{root}/parquet/*/*.parquet')) for r in pq.read_table(p).to_pylist()]
    samples = {s['__key__']: s for p in sorted(glob.glob(f'{root}/webdataset/*/*.tar')) for s in read_samples(p)}
    out = {}
    for row in rows:
        out.setdefault(row['title'], {})[row['example_id']] = (row, _plain(samples[row['example_id']]))
    return out


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('faults')
    for i, title in enumerate(TITLES):
        write_song(str(root / 'in'), f'Artist {i}', title, seed=100 + i, seconds=2.0)
    clean = run([f'--input={root / "in"}', f'--output={root / "clean"}'] + FLAGS)
    assert clean.manifest['errors']['total'] == 0
    return root, _by_title(str(root / 'clean'))


def test_a_fault_at_each_stage_loses_only_its_song(corpus, monkeypatch):
    root, clean = corpus
    song_ids = {title: next(iter(examples.values()))[0]['song_id'] for title, examples in clean.items()}
    faulted = dict(zip(TITLES, STAGES))
    keys = {title: song_ids[title] for title in faulted}
    keys[TITLES[STAGES.index('write')]] = sorted(clean[TITLES[STAGES.index('write')]])[0]   # one record only
    monkeypatch.setenv(FAULTS_ENV, ','.join(f'{stage}={keys[title]}' for title, stage in faulted.items()))
    result = run([f'--input={root / "in"}', f'--output={root / "faulted"}'] + FLAGS)
    errors = read_errors(str(root / 'faulted'))
    # one record per failed song, naming the stage and the song's archive
    assert sorted((e['stage'], e['song_id']) for e in errors) == sorted(
        (stage, song_ids[title]) for title, stage in faulted.items())
    for e in errors:
        assert e['error_type'] == 'InjectedFault' and e['input'].endswith(
            f'{next(t for t, s in faulted.items() if s == e["stage"])}.zip')
    assert result.manifest['errors']['by_stage'] == {stage: 1 for stage in STAGES}
    built = _by_title(str(root / 'faulted'))
    kept = [t for t in TITLES if t not in faulted]
    assert sorted(built) == kept                       # nothing of a failed song reached a shard
    for title in kept:                                 # and the others are byte for byte the same
        assert built[title].keys() == clean[title].keys()
        for example_id, (row, sample) in built[title].items():
            assert sample == clean[title][example_id][1] and row == clean[title][example_id][0]
    # the write-faulted song's other records were made and checked, then dropped with it
    assert result.counters['ContainFailures.records_dropped'] == len(clean[TITLES[STAGES.index('write')]]) - 1


def test_examples_without_codes_fail_their_song_whole():
    from schemas.continuation import ExampleMeta
    from schemas.records import EncodedWaveform
    meta = lambda window: ExampleMeta(   # noqa: E731
        example_id=f'e{window}', song_id='s', artist=None, title='t', source='stems', split='train',
        target_stem='bass', target_instrument='bass', context_stems=('drums',), assortment=0, variant=0,
        chunk_index=window, start_seconds=float(window), duration_seconds=1.0, mix_gain=1.0, codec='c',
        codec_weights='w', frame_rate=100.0, sample_rate_hz=1000, context_waveform_id='ctx',
        target_waveform_id='tgt')
    codes = np.zeros((1, 2), np.int16)
    encoded = [EncodedWaveform('s', 'ctx', {0: codes, 1: codes}), EncodedWaveform('s', 'tgt', {0: codes})]
    out = list(AttachCodesFn().process(('s', {'examples': [meta(0), meta(1)], 'encoded': encoded})))
    assert len(out) == 1 and out[0].tag == FAILED      # not one example of the song, and why
    record = out[0].value
    assert (record.stage, record.error_type, record.song_id) == ('assemble', 'MissingCodes', 's')
    assert '1 of 2 example(s)' in record.message


class _Runtime:
    """Codes = the first sample of each item, so a code shows which segment it came from."""
    batch_size = 4

    def encode(self, batch):
        return np.repeat(batch[:, :1, :1].astype(np.int16), 8, axis=-1), None


def test_a_failing_batch_is_retried_one_segment_at_a_time(monkeypatch):
    from types import SimpleNamespace
    from schemas.records import Segment
    from transforms.encode import EncodeChunksFn
    monkeypatch.setenv(FAULTS_ENV, 'encode=bad')
    fn = EncodeChunksFn(SimpleNamespace(spec=SimpleNamespace(sample_rate_hz=100)), 4, None)
    fn.handle = SimpleNamespace(batch_size=4, runtime=_Runtime())
    fn.start_bundle()
    segment = lambda value: Segment(windows=(0,), audio=np.full((1, 80), value, np.float32), real_samples=80,   # noqa: E731
                                    offsets_frames=(0,), frames=8)
    out = []
    for i, song in enumerate(['good1', 'bad', 'good2', 'good3']):
        out += list(fn.process(((song, f'w{i}'), segment(i)), 0, None))
    parts = [o.value for o in out if not hasattr(o, 'tag')]
    failed = [o.value.value for o in out if hasattr(o, 'tag')]
    assert sorted((p.song_id, int(p.codes[0][0, 0])) for p in parts) == [('good1', 0), ('good2', 2), ('good3', 3)]
    assert [(f.stage, f.song_id, f.error_type) for f in failed] == [('encode', 'bad', 'InjectedFault')]
