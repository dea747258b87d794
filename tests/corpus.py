"""Generated test inputs: stem archives and folders of synthesized audio, and bad ones."""
import io
import os
import zipfile

import numpy as np
import soundfile as sf

from transforms.synth import synth_stems

RATE = 44100


def wav_bytes(audio: np.ndarray, rate: int = RATE, fmt: str = 'WAV', subtype: str = 'PCM_16') -> bytes:
    """``audio`` as [samples] or [samples, channels]."""
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def song_stems(seed: int, seconds: float = 3.0, rate: int = RATE) -> dict:
    """{file name: bytes} of a four-stem synthesized song."""
    stems = synth_stems(seed, seconds, rate)
    names = {'drums': 'Drums.wav', 'bass': 'Bass.wav', 'guitar': 'Guitar.wav', 'keys': 'Keys.wav'}
    return {names[k]: wav_bytes(v, rate) for k, v in stems.items()}


def write_zip(path: str, members: dict, folder: str = None) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():   # a fixed member time: equal inputs, equal bytes
            member = zipfile.ZipInfo(f'{folder}/{name}' if folder else name, date_time=(2020, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, data)
    return path


def write_song(root: str, artist: str, title: str, seed: int, seconds: float = 3.0, as_folder=False,
               extra: dict = None) -> str:
    members = dict(song_stems(seed, seconds), **(extra or {}))
    if as_folder:
        folder = os.path.join(root, artist, title)
        os.makedirs(folder, exist_ok=True)
        for name, data in members.items():
            with open(os.path.join(folder, name), 'wb') as f:
                f.write(data)
        return folder
    return write_zip(os.path.join(root, artist, f'{title}.zip'), members, folder=title)


def tree_fingerprint(root: str) -> dict:
    """{relative path: (size, mtime_ns, bytes)} of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = (os.path.getsize(path), os.stat(path).st_mtime_ns, f.read())
    return out


def three_songs(root: str) -> str:
    """Two zipped songs of one artist and a song folder of another, 3 s each."""
    write_song(root, 'Ana', 'one', 1)
    write_song(root, 'Ana', 'two', 2)
    write_song(root, 'Bo', 'three', 3, as_folder=True)
    return root
