"""The ``musdb`` package, imported to read a folder export as separation trainers do.

musdb lists a MUSDB18-HQ folder itself (subsets, the setup file's validation tracks, sources,
targets) and reads each WAV's length and samples through ``stempeg``, which calls the ``ffprobe``
and ``ffmpeg`` programs and refuses to import without them. Where those programs are missing,
``stempeg``'s two readers that musdb calls on WAVs (``Info`` and ``read_stems``) are replaced by
the same readings done with libsndfile, so musdb's own listing, splitting and mixing still run.
"""
import importlib
import shutil
import sys
import types

import numpy as np
import soundfile as sf


class _Info:
    """stempeg.Info for a WAV: one audio stream, its length in samples and seconds and its rate."""

    def __init__(self, filename):
        info = sf.info(filename)
        self.audio_streams = [{'duration_ts': info.frames, 'duration': info.frames / info.samplerate,
                               'sample_rate': info.samplerate, 'channels': info.channels}]

    def samples(self, idx):
        return int(self.audio_streams[idx]['duration_ts'])

    def duration(self, idx):
        return float(self.audio_streams[idx]['duration'])

    def sample_rate(self, idx):
        return int(self.audio_streams[idx]['sample_rate'])

    rate = sample_rate


def _read_stems(filename, start=None, duration=None, stem_id=None, dtype=np.float64, info=None,
                sample_rate=None, **_):
    """stempeg.read_stems for a WAV (one stem): (samples, channels) from ``start`` seconds."""
    rate = sf.info(filename).samplerate
    if sample_rate not in (None, rate):
        raise ValueError(f'{filename}: resampling to {sample_rate} Hz is not done here')
    first = int(round((start or 0) * rate))
    frames = -1 if duration is None else int(round(duration * rate))
    audio, rate = sf.read(filename, start=first, frames=frames, dtype='float64', always_2d=True)
    return audio.astype(dtype), rate


def import_musdb(monkeypatch):
    """musdb, with stempeg's WAV readers done by libsndfile when ffmpeg/ffprobe are not installed."""
    if not (shutil.which('ffmpeg') and shutil.which('ffprobe')):
        stand_in = types.ModuleType('stempeg')
        stand_in.Info, stand_in.read_stems = _Info, _read_stems
        stand_in.write_audio = stand_in.write_stems = None      # musdb writes only estimates; not used
        monkeypatch.setitem(sys.modules, 'stempeg', stand_in)
        for name in [m for m in sys.modules if m == 'musdb' or m.startswith('musdb.')]:
            monkeypatch.delitem(sys.modules, name)
    return importlib.import_module('musdb')
