"""The progress a build and verify show: songs done of the source's total, examples, the encode
rate over the last minute and an ETA that counts the songs not planned yet."""
import io
import json

from pipelines.progress import HashProgress, ProgressReporter, RateMeter, describe, read_progress


def _work(tmp_path, total=None):
    plans, codes = tmp_path / '_work' / 'plans', tmp_path / '_work' / 'codes'
    plans.mkdir(parents=True)
    codes.mkdir()
    if total is not None:
        (tmp_path / '_work' / 'songs.json').write_text(json.dumps({'songs': total}))
    (plans / 's1.json').write_text(json.dumps({'waveforms': {'a': 2, 'b': 2}, 'examples': 6}))
    (plans / 's2.json').write_text(json.dumps({'waveforms': {'c': 4}, 'examples': 4}))
    (plans / 's3.json').write_text(json.dumps({'waveforms': {}, 'examples': 0}))     # nothing to encode
    for name in ('s1--a--0-2', 's1--b--0-1', 's1--b--1-1', 's2--c--0-1', 'x--y--0-1'):   # x: not planned yet
        (codes / f'{name}.npz').write_bytes(b'')
    return str(tmp_path)


def test_songs_done_of_the_total_and_an_eta_for_unplanned_songs(tmp_path):
    progress = read_progress(_work(tmp_path, total=6), 10.0)
    assert (progress.songs_total, progress.songs_planned, progress.songs_done) == (6, 3, 2)
    assert progress.examples_ready == 6 and progress.encoded_seconds == 50.0
    # 30 s planned and left, plus 3 unplanned songs at the planned songs' mean (80 s / 3 songs)
    assert progress.remaining_seconds == 30.0 + 3 * 80.0 / 3
    line = describe(progress, 5.0, 75.0)
    assert line.startswith('2/6 songs done (3 planned), 6 examples ready, 50 s of audio encoded (5.00 s/s')
    assert line.endswith('1m15s elapsed, ETA 22s')


def test_without_a_song_count_the_total_is_unknown(tmp_path):
    progress = read_progress(_work(tmp_path), 10.0)
    assert progress.songs_total is None and progress.remaining_seconds == 30.0
    assert describe(progress, 0.0, 5.0).startswith('2/? songs done') and 'ETA unknown' in describe(progress, 0.0, 5.0)


def test_the_rate_is_over_the_last_minute():
    meter = RateMeter()
    assert meter.add(0, 0) == 0.0
    meter.add(30, 300)                 # 10 s/s for the first half minute
    meter.add(90, 300)                 # then nothing for a minute
    assert meter.add(120, 300) == 0.0  # the first half minute is out of the window
    assert RateMeter().add(5, 10) == 0.0


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_gets_lines(tmp_path):
    root = _work(tmp_path, total=6)
    terminal = _Terminal()
    with ProgressReporter(root, 10.0, interval_s=0.05, stream=terminal) as reporter:
        reporter.tick()
    assert 'songs' in terminal.getvalue() and '2/6' in terminal.getvalue() and 'progress: ' not in terminal.getvalue()
    pipe = io.StringIO()
    with ProgressReporter(root, 10.0, interval_s=0.05, stream=pipe):
        import time
        time.sleep(0.3)
    assert pipe.getvalue().startswith('progress: 2/6 songs done')


def test_verify_shows_files_and_bytes_read():
    pipe = io.StringIO()
    meter = HashProgress(2, 3_000_000, stream=pipe, interval_s=3600)
    meter.update(1_000_000)
    meter.update(2_000_000)
    assert pipe.getvalue().startswith('verify: 2/2 files read, 3.0 of 3.0 MB')
    terminal = _Terminal()
    bar = HashProgress(1, 10, stream=terminal)
    bar.update(10)
    bar.close()
    assert 'hashing' in terminal.getvalue() and '100%' in terminal.getvalue()
