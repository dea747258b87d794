"""AudioRecordCoder: song-length audio records round-trip, and a size estimate copies no audio."""
import tracemalloc

import apache_beam as beam
import numpy as np
from apache_beam import coders

from pipelines.build import parse_args, resolve_paths, use_local_runner, with_preset
from pipelines.graph import build_graph
from schemas.coders import AudioRecordCoder
from schemas.records import (ChunkedWaveform, ExamplePlan, LoadedSong, PlannedSong, Segment, SongRef,
                             Waveform)
from transforms.tasks.registry import task_class

SECONDS = 60
RATE = 32000


def _song(seconds=SECONDS) -> LoadedSong:
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((2, seconds * RATE), dtype=np.float32)
    ref = SongRef(song_id='s1', artist='A', title='T', source='stems', input_path='/in/A/T.zip',
                  container='zip', content_sha256='00')
    return LoadedSong(ref=ref, sample_rate_hz=RATE, audio={'drums': stereo, 'bass': stereo[:1] * 0.5,
                                                           'keys': stereo[::-1, ::2]},   # a strided view
                      silent=('keys',), padded_seconds={'bass': 0.5}, notes=('n',), split='train')


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        assert b.flags.writeable
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif hasattr(a, '__dataclass_fields__'):
        for name in a.__dataclass_fields__:
            _same(getattr(a, name), getattr(b, name))
    else:
        assert a == b


def test_records_round_trip_with_writable_arrays():
    coder = AudioRecordCoder()
    song = _song(2)
    planned = PlannedSong(song=song, plans=(ExamplePlan(target='drums', context=('bass',), assortment=0),))
    audio = song.audio['drums']
    chunked = ChunkedWaveform(song_id='s1', waveform_id='w', segments=(
        Segment(windows=(0,), audio=audio[:, :1000].copy(), real_samples=1000, offsets_frames=(0,), frames=2),
        Segment(windows=(1, 2), audio=audio[:, 640:1640].copy(), real_samples=900, offsets_frames=(1, 3), frames=2)),
        window_audio={1: audio[:, :640].copy()})
    for record in (song, planned, chunked, chunked.segments[1], Waveform('s1', 'w', audio, (0, 3), RATE)):
        encoded = coder.encode(record)
        assert isinstance(encoded, bytes) and abs(coder.estimate_size(record) - len(encoded)) < 0.01 * len(encoded)
        _same(record, coder.decode(encoded))


def test_size_estimate_copies_no_audio():
    song = _song()
    audio_bytes = sum(a.nbytes for a in song.audio.values())
    peaks = {}
    for name, coder in (('audio', AudioRecordCoder()), ('pickle', coders.PickleCoder())):
        tracemalloc.start()
        estimate = coder.estimate_size(song)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert estimate >= audio_bytes
    # Beam's pickling coders build the whole encoding to measure it; this one does not.
    assert peaks['pickle'] > audio_bytes * 0.5
    assert peaks['audio'] < audio_bytes * 0.01


def test_song_length_stages_use_the_audio_coder(tmp_path):
    (tmp_path / 'in').mkdir()
    args, beam_options = parse_args(with_preset([f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}',
                                                 '--codec-weights=random']))
    use_local_runner(beam_options)
    resolve_paths(args)
    pipeline = beam.Pipeline(options=beam_options)
    build_graph(pipeline, args, task_class(args.task).from_args(args, beam_options))
    stages = ('DecodeStems', 'SplitByGroup', 'PlanPerSong', 'MixContexts', 'CutWindows')
    found = {}

    class Visit(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            parts = node.full_label.split('/')
            # A ParDo with tagged outputs is a composite holding ParDo(<its DoFn>).
            stage = parts[-2] if parts[-1].startswith('ParDo(') and len(parts) > 1 else parts[-1]
            if stage in stages:
                found[stage] = type(coders.registry.get_coder(node.outputs[None].element_type)).__name__

    pipeline.visit(Visit())
    assert found == {stage: 'AudioRecordCoder' for stage in stages}


def test_a_decoded_song_flows_fused_from_decode_to_the_encoder(tmp_path):
    """The runner's stages: decoding, the split, the task's render, chunking and encoding run in one
    fused stage, so a decoded song is never held with the others at a stage boundary (memory does
    not grow with the corpus); the policy waits for every song as SongRefs, before decoding."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    (tmp_path / 'in').mkdir()
    args, beam_options = parse_args(with_preset([f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}',
                                                 '--codec-weights=random']))
    resolve_paths(args)
    pipeline = beam.Pipeline(options=beam_options)
    build_graph(pipeline, args, task_class(args.task).from_args(args, beam_options))
    _, stages = fn_runner.FnApiRunner().create_stages(pipeline.to_runner_api())
    names = {stage.name: [t.unique_name for t in stage.transforms] for stage in stages}
    decoding = [name for name, transforms in names.items() if any('DecodeStems' in t for t in transforms)]
    assert len(decoding) == 1
    fused = ' '.join(names[decoding[0]])
    for stage in ('AwaitSplitPolicy', 'SplitByGroup', 'PlanExamples', 'MixContexts', 'CutWindows', 'EncodeSegments'):
        assert stage in fused, stage
