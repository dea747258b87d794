"""Generated corpus trees in the layouts of Slakh2100/BabySlakh, MUSDB18(-HQ), MoisesDB and audio
folders, with the quirks of the real releases. Audio is synthesized (transforms.synth)."""
import json
import os

import numpy as np
import soundfile as sf

from schemas import av_audio
from transforms.synth import synth_stems

# Slakh stems: (synth stem, inst_class, program_num, midi_program_name, is_drum)
SLAKH_STEMS = {
    'S00': ('drums', 'Drums', 128, 'Drums', True),
    'S01': ('bass', 'Bass', 33, 'Electric Bass (finger)', False),
    'S02': ('guitar', 'Guitar', 30, 'Distortion Guitar', False),
    'S03': ('keys', 'Piano', 0, 'Acoustic Grand Piano', False),
}
SLAKH_QUIRK_STEMS = {   # Track00001 adds these: a gap (S04 listed, not rendered) and odd classes
    'S05': ('keys', 'Strings (continued)', 48, 'String Ensemble 1', False),
    'S14': ('guitar', 'Sound effects', 122, 'Seashore', False),
}


def _write(path: str, data) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)
    return path


def _stem_entry(sid, inst_class, program, name, is_drum, rendered=True):
    entry = {'audio_rendered': rendered, 'inst_class': inst_class, 'is_drum': is_drum,
             'midi_program_name': name, 'midi_saved': True, 'plugin_name': 'None' if not rendered else 'fake.nkm',
             'program_num': program}
    if rendered:
        entry['integrated_loudness'] = -20.5
    return entry


def _slakh_yaml(uuid, stems: dict) -> str:
    lines = [f'UUID: {uuid}', 'audio_dir: /home/someone/garbage/abs/path/stems', 'midi_dir: C:\\nowhere\\MIDI',
             'lmd_midi_dir: lmd_matched/X/Y/Z.mid', 'normalization_factor: -13.0', 'normalized: true',
             'overall_gain: 0.5', 'target_peak: -1.0', 'stems:']
    for sid, entry in stems.items():
        lines.append(f'  {sid}:')
        lines += [f'    {k}: {json.dumps(v)}' for k, v in entry.items()]
    return '\n'.join(lines) + '\n'


def write_slakh_track(folder: str, seed: int, uuid: str, seconds=2.0, rate=44100, ext='flac', quirks=False,
                      rendered_flag=True, metadata=True):
    """One Slakh track folder; returns {stem id: canonical-class-to-expect}."""
    synth = synth_stems(seed, seconds, rate)
    stems = dict(SLAKH_STEMS, **(SLAKH_QUIRK_STEMS if quirks else {}))
    entries = {}
    os.makedirs(os.path.join(folder, 'stems'), exist_ok=True)
    for sid, (source, inst_class, program, name, is_drum) in stems.items():
        sf.write(os.path.join(folder, 'stems', f'{sid}.{ext}'), synth[source], rate)
        entries[sid] = _stem_entry(sid, inst_class, program, name, is_drum, rendered_flag)
        _write(os.path.join(folder, 'MIDI', f'{sid}.mid'), b'MThd')
    if quirks:   # listed, never rendered: no file, plugin "None", no loudness
        entries['S04'] = _stem_entry('S04', 'Organ', 16, 'Drawbar Organ', False, rendered=False)
        entries = dict(sorted(entries.items()))
    mix = np.sum(list(synth.values()), axis=0) / 4
    sf.write(os.path.join(folder, f'mix.{ext}'), mix.astype(np.float32), rate)   # mono, like the real mix
    _write(os.path.join(folder, 'all_src.mid'), b'MThd')
    if metadata:
        _write(os.path.join(folder, 'metadata.yaml'), _slakh_yaml(uuid, entries))


def make_slakh(root: str, marker: str = None) -> dict:
    """A slakh2100_flac_redux-like tree. Returns {track: expected split folder}.

    train: Track00001 (stem-id gap S04 listed but not rendered, S14 after S05, odd classes,
    garbage audio_dir), Track00002 (unsafe YAML tag: refused), Track00003 (no metadata.yaml),
    Track00007; validation: Track00004; test: Track00005; omitted: Track00006 (the same Lakh
    UUID as Track00001).
    """
    layout = {'Track00001': 'train', 'Track00007': 'train', 'Track00004': 'validation', 'Track00005': 'test',
              'Track00006': 'omitted'}
    for i, (track, split) in enumerate(sorted(layout.items())):
        uuid = 'aaaa1111' if track in ('Track00001', 'Track00006') else f'uuid{i:04d}'
        write_slakh_track(os.path.join(root, split, track), seed=10 + i, uuid=uuid, quirks=track == 'Track00001')
    write_slakh_track(os.path.join(root, 'train', 'Track00002'), seed=20, uuid='bbbb')
    _write(os.path.join(root, 'train', 'Track00002', 'metadata.yaml'),
           f'UUID: bbbb\nstems: !!python/object/apply:os.system ["touch {marker or "/dev/null"}"]\n')
    write_slakh_track(os.path.join(root, 'train', 'Track00003'), seed=21, uuid='cccc', metadata=False)
    return layout


def make_baby_slakh(root: str, tracks: int = 3) -> list:
    """BabySlakh: no split folders, .wav at 16 kHz, audio_rendered false on every stem."""
    names = [f'Track{i:05d}' for i in range(1, tracks + 1)]
    for i, track in enumerate(names):
        write_slakh_track(os.path.join(root, track), seed=30 + i, uuid=f'baby{i}', rate=16000, ext='wav',
                          rendered_flag=False)
    return names


def musdb_audio(seed: int, seconds=2.0, rate=44100) -> dict:
    """{stem: stereo [samples, 2] float32} of a MUSDB-like song, mixture included."""
    synth = synth_stems(seed, seconds, rate)
    voice = synth_stems(seed + 1000, seconds, rate)['guitar']
    mono = {'drums': synth['drums'], 'bass': synth['bass'], 'other': 0.5 * (synth['guitar'] + synth['keys']),
            'vocals': voice}
    stereo = {k: np.stack([v, 0.8 * v], axis=1).astype(np.float32) for k, v in mono.items()}
    stereo['mixture'] = (0.5 * sum(stereo.values())).astype(np.float32)
    return stereo


MUSDB_SONGS = {('train', 'Actions - One Minute Smile'): 'validation', ('train', 'Ana Lu - First Light'): 'train',
               ('test', 'Bo Diddly - Second'): 'test'}


def make_musdb_hq(root: str) -> dict:
    """MUSDB18-HQ: <root>/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav, plus
    a stray accompaniment.wav (not a stem). Returns {name: expected split}."""
    for i, (split, name) in enumerate(sorted(MUSDB_SONGS)):
        for stem, audio in musdb_audio(40 + i).items():
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            sf.write(os.path.join(root, split, name, f'{stem}.wav'), audio, 44100, subtype='PCM_16')
    sf.write(os.path.join(root, 'train', 'Ana Lu - First Light', 'accompaniment.wav'),
             np.zeros((100, 2), np.float32), 44100)
    return {name: split for (_, name), split in MUSDB_SONGS.items()}


def make_musdb_stems(root: str) -> dict:
    """MUSDB18: <root>/{train,test}/<Artist - Title>.stem.mp4, five AAC streams (mixture, drums,
    bass, other, vocals) encoded in process from generated audio. Returns {name: expected split}."""
    for i, (split, name) in enumerate(sorted(MUSDB_SONGS)):
        audio = musdb_audio(40 + i)
        os.makedirs(os.path.join(root, split), exist_ok=True)
        av_audio.encode([audio[stem].T for stem in ('mixture', 'drums', 'bass', 'other', 'vocals')], 44100, 'aac',
                        96, 'mp4', target=os.path.join(root, split, f'{name}.stem.mp4'))
    return {name: split for (_, name), split in MUSDB_SONGS.items()}


def _moises_track(root, uuid, artist, song, stems, seed, seconds=2.0, rate=44100, skip_files=()):
    synth = synth_stems(seed, seconds, rate)
    data = {'id': uuid, 'artist': artist, 'song': song, 'genre': 'Rock', 'stems': []}
    for stem_name, tracks in stems.items():
        entry = {'id': f'{stem_name}-stem', 'stemName': stem_name, 'tracks': []}
        for track_id, (source, track_type, bleed) in tracks.items():
            entry['tracks'].append({'id': track_id, 'extension': 'wav', 'trackType': track_type,
                                    'has_bleed': bleed, 'type': 'audio/x-wav'})
            if track_id not in skip_files:
                os.makedirs(os.path.join(root, uuid, stem_name), exist_ok=True)
                audio = 0.6 * synth[source] if source != 'kick' else synth['drums'] * (np.arange(len(synth['drums'])) % 2)
                sf.write(os.path.join(root, uuid, stem_name, f'{track_id}.wav'),
                         np.stack([audio, audio], axis=1).astype(np.float32), rate, subtype='PCM_16')
        data['stems'].append(entry)
    _write(os.path.join(root, uuid, 'data.json'), json.dumps(data, indent=2))


def make_moisesdb(root: str) -> None:
    """Two good tracks and the quirks: a stem of two tracks (summed), a track with bleed, a track
    listed whose file is missing (its stem is skipped), an unlisted file, a track folder without
    data.json, and one whose data.json is not JSON."""
    _moises_track(root, '0a1b-uuid-one', 'Cy Twombly Band', 'Paper', {
        'drums': {'t-kick': ('kick', 'kick_drum', False), 't-snare': ('drums', 'snare_drum', False)},
        'bass': {'t-bass': ('bass', 'bass_guitar', False)},
        'guitar': {'t-gtr1': ('guitar', 'clean_electric_guitar', False),
                   't-gtr2': ('keys', 'distorted_electric_guitar', True)},
        'other_keys': {'t-pad': ('keys', 'synth_pad', False)},
    }, seed=50)
    _moises_track(root, '2c3d-uuid-two', 'Di Project', 'Stone', {
        'drums': {'u-kit': ('drums', 'full_acoustic_drumkit', False)},
        'bass': {'u-bass': ('bass', 'bass_synthesizer', False)},
        'vocals': {'u-voc': ('guitar', 'lead_female_singer', True)},
        'piano': {'u-pno': ('keys', 'grand_piano', False), 'u-gone': ('keys', 'electric_piano', False)},
    }, seed=51, skip_files=('u-gone',))
    _write(os.path.join(root, '2c3d-uuid-two', 'wind', 'stray.wav'), open(
        os.path.join(root, '2c3d-uuid-two', 'bass', 'u-bass.wav'), 'rb').read())
    _moises_track(root, '4e5f-uuid-nojson', 'Nobody', 'Lost', {'drums': {'n-kit': ('drums', 'drum_machine', False)}},
                  seed=52)
    os.remove(os.path.join(root, '4e5f-uuid-nojson', 'data.json'))
    _moises_track(root, '6a7b-uuid-badjson', 'Nobody', 'Broken', {'bass': {'b-b': ('bass', 'bass_guitar', False)}},
                  seed=53)
    _write(os.path.join(root, '6a7b-uuid-badjson', 'data.json'), '{"stems": [unterminated')


def make_folders(root: str) -> dict:
    """<root>/<label>/<file> in wav, flac, ogg, mp3 and m4a (AAC), plus a text file.
    Returns {title: label}."""
    songs = {('ambient', 'calm.wav'): 60, ('ambient', 'drift.flac'): 61, ('techno', 'pulse.ogg'): 62,
             ('techno', 'kick.mp3'): 63, ('lofi', 'tape.m4a'): 64}
    for (label, name), seed in songs.items():
        mix = np.sum(list(synth_stems(seed, 2.0, 44100).values()), axis=0) / 4
        path = os.path.join(root, label, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if name.endswith('.m4a'):
            av_audio.encode([np.stack([mix, mix]).astype(np.float32)], 44100, 'aac', 96, 'mp4', target=path)
        else:
            fmt = {'wav': 'WAV', 'flac': 'FLAC', 'ogg': 'OGG', 'mp3': 'MP3'}[name.rsplit('.', 1)[1]]
            sf.write(path, mix.astype(np.float32), 44100, format=fmt)
    _write(os.path.join(root, 'techno', 'notes.txt'), 'bpm 128')
    return {os.path.splitext(name)[0]: label for label, name in songs}
