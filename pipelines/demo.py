"""The demo corpus: a few synthesized songs as producers' stem archives.

``<root>/<artist>/<song>.zip``, each zip holding 44.1 kHz stereo stems (drums, bass,
guitar, keys) under one song folder, the way stem exports arrive.
"""
import io
import os
import zipfile

import numpy as np
import soundfile as sf

from transforms.synth import synth_stems

DEMO_RATE_HZ = 44100
# Artists chosen so that the default split ratios put songs in all three splits.
DEMO_SONGS = (('Ada Lace', 'Night Drive'), ('Ada Lace', 'Harbor Lights'), ('Basalt', 'Low Tide'),
              ('Kite Theory', 'Glass'), ('Sable Coast', 'Meridian'), ('Juno Park', 'Paper Moon'))
STEM_FILE_NAMES = {'drums': 'Drums.wav', 'bass': 'Bass.wav', 'guitar': 'Gtr_Lead.flac', 'keys': 'Keys.wav'}


def _stereo_bytes(mono: np.ndarray, rate: int, name: str, rng) -> bytes:
    pan = rng.uniform(0.3, 0.7)
    stereo = np.stack([mono * (1 - pan) * 2, mono * pan * 2], axis=1).clip(-1, 1)
    buf = io.BytesIO()
    sf.write(buf, stereo, rate, format='FLAC' if name.endswith('.flac') else 'WAV', subtype='PCM_16')
    return buf.getvalue()


def make_demo_corpus(root: str, seconds: float = 10.5, seed: int = 0, songs=DEMO_SONGS) -> list:
    """Writes the demo archives under ``root``; returns their paths."""
    paths = []
    for index, (artist, title) in enumerate(songs):
        folder = os.path.join(root, artist)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f'{title}.zip')
        rng = np.random.default_rng(seed * 1000 + index)
        stems = synth_stems(seed * 1000 + index, seconds, DEMO_RATE_HZ)
        with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
            for stem, audio in stems.items():
                name = STEM_FILE_NAMES[stem]
                # A fixed member time: the same corpus is byte-identical, so its song ids are too.
                member = zipfile.ZipInfo(f'{title}/{name}', date_time=(2020, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, _stereo_bytes(audio, DEMO_RATE_HZ, name, rng))
        paths.append(path)
    return paths
