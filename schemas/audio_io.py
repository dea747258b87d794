"""Decoding, channel conversion, resampling and FLAC encoding of audio.

Audio is float32 numpy ``[channels, samples]``.
"""
import io
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aif', '.aiff', '.m4a', '.aac', '.opus', '.wma')


class AudioDecodeError(ValueError):
    """The bytes are not audio this project can decode, or not audio worth keeping."""


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def decode_audio(data: bytes, name: str, max_seconds: float):
    """Decodes audio bytes with soundfile, or ffmpeg (through pydub) for what soundfile
    cannot read. Returns ``(audio [channels, samples] float32, sample_rate_hz)``.

    Raises:
        AudioDecodeError: unreadable, empty, too long or non-finite audio.
    """
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        audio, rate = _decode_with_ffmpeg(data, name, max_seconds, sf_error)
    else:
        if info.samplerate <= 0:
            raise AudioDecodeError(f'{name}: invalid sample rate {info.samplerate}')
        if info.frames > max_seconds * info.samplerate:
            raise AudioDecodeError(
                f'{name}: {info.frames / info.samplerate:.1f} s is longer than the limit of {max_seconds:g} s')
        try:
            audio, rate = sf.read(io.BytesIO(data), dtype='float32', always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioDecodeError(f'{name}: cannot decode audio ({_reason(e)})') from e
        audio = audio.T    # a view: [channels, samples] without a second copy of the stem
    return check_audio(audio, name, rate, max_seconds), rate


def check_audio(audio: np.ndarray, name: str, rate: int, max_seconds: float) -> np.ndarray:
    """Rejects empty, over-long and non-finite audio with a message naming ``name``."""
    if audio.size == 0 or audio.shape[-1] == 0:
        raise AudioDecodeError(f'{name}: the audio is empty (0 samples)')
    if audio.shape[-1] > max_seconds * rate:
        raise AudioDecodeError(
            f'{name}: {audio.shape[-1] / rate:.1f} s is longer than the limit of {max_seconds:g} s')
    if not np.isfinite(audio).all():
        bad = int(np.size(audio) - np.isfinite(audio).sum())
        raise AudioDecodeError(f'{name}: {bad} samples are NaN or infinite')
    return audio


def _reason(error: Exception) -> str:
    """libsndfile's message without the in-memory file object's repr."""
    return str(error).split('>: ', 1)[-1].strip() or type(error).__name__


def _decode_with_ffmpeg(data: bytes, name: str, max_seconds: float, sf_error: Exception):
    try:
        from pydub import AudioSegment  # optional: formats libsndfile does not read
    except ImportError:
        AudioSegment = None
    if AudioSegment is None or shutil.which('ffmpeg') is None:
        raise AudioDecodeError(f'{name}: not audio that soundfile can read ({_reason(sf_error)}); '
                               'install ffmpeg and pydub to decode other formats')
    try:
        segment = AudioSegment.from_file(io.BytesIO(data))
    except Exception as e:  # pydub raises bare Exceptions carrying ffmpeg's message
        raise AudioDecodeError(f'{name}: neither soundfile nor ffmpeg can decode it ({_reason(sf_error)}; '
                               f'ffmpeg: {str(e).strip().splitlines()[-1] if str(e).strip() else e})') from e
    rate = segment.frame_rate
    if segment.frame_count() > max_seconds * rate:
        raise AudioDecodeError(f'{name}: {segment.frame_count() / rate:.1f} s is longer than the '
                               f'limit of {max_seconds:g} s')
    samples = np.array(segment.get_array_of_samples(), dtype=np.float32)
    samples /= float(1 << (8 * segment.sample_width - 1))
    return np.ascontiguousarray(samples.reshape(-1, segment.channels).T), rate


def decode_stream(data: bytes, stream: int, name: str, max_seconds: float):
    """Decodes audio stream ``stream`` (0-based, audio streams only) of a multi-stream file
    (a MUSDB18 ``.stem.mp4``) with ffmpeg. Returns ``(audio [channels, samples] float32, rate)``.

    Raises:
        AudioDecodeError: ffmpeg is missing, the stream does not exist or cannot be decoded.
    """
    if shutil.which('ffmpeg') is None or shutil.which('ffprobe') is None:
        raise AudioDecodeError(f'{name}: decoding stream {stream} needs ffmpeg and ffprobe (apt-get install ffmpeg)')
    # mp4 indexes may sit at the end of the file: ffmpeg needs a seekable file, not a pipe.
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(name)[1] or '.bin') as handle:
        handle.write(data)
        handle.flush()
        probe = _run(['ffprobe', '-v', 'error', '-select_streams', f'a:{stream}', '-show_entries',
                      'stream=channels,sample_rate', '-of', 'json', handle.name], name, stream)
        found = json.loads(probe or b'{}').get('streams') or []
        if not found:
            raise AudioDecodeError(f'{name}: has no audio stream {stream}')
        channels, rate = int(found[0]['channels']), int(found[0]['sample_rate'])
        raw = _run(['ffmpeg', '-v', 'error', '-nostdin', '-i', handle.name, '-map', f'0:a:{stream}',
                    '-t', f'{max_seconds + 1:g}', '-f', 'f32le', '-acodec', 'pcm_f32le', 'pipe:1'], name, stream)
    audio = np.frombuffer(raw, dtype=np.float32)
    audio = np.ascontiguousarray(audio[:len(audio) // channels * channels].reshape(-1, channels).T)
    return check_audio(audio, f'{name} (stream {stream})', rate, max_seconds), rate



def _run(command, name: str, stream: int) -> bytes:
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode('utf-8', 'replace').strip().splitlines()
        raise AudioDecodeError(f'{name}: cannot decode audio stream {stream} '
                               f'({message[-1] if message else f"exit status {done.returncode}"})')
    return done.stdout


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Down-mixes (mean) or duplicates channels to reach ``channels``."""
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if channels == 2:
        # Multichannel to stereo: even channels left, odd channels right.
        return np.stack([audio[0::2].mean(axis=0), audio[1::2].mean(axis=0)]).astype(np.float32)
    raise ValueError(f'cannot convert {have} channels to {channels}')


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling with soxr (``[channels, samples]`` in and out)."""
    if rate_in == rate_out:
        return audio
    import soxr
    out = soxr.resample(np.ascontiguousarray(audio.T), rate_in, rate_out, quality='HQ')
    return np.ascontiguousarray(out.T, dtype=np.float32).reshape(audio.shape[0], -1)


def sum_audio(arrays, like: np.ndarray = None) -> np.ndarray:
    """Sums ``[channels, samples]`` arrays in order into one new float32 buffer, padding shorter
    ones with silence; silence shaped like ``like`` when there are none. (``np.sum`` of a list
    would first stack them all: a copy of every stem of the song.)"""
    arrays = list(arrays)
    if not arrays:
        return np.zeros(like.shape, np.float32)
    total = np.zeros((arrays[0].shape[0], max(a.shape[-1] for a in arrays)), np.float32)
    total[:, :arrays[0].shape[-1]] = arrays[0]
    for array in arrays[1:]:
        total[:, :array.shape[-1]] += array
    return total


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else -np.inf


def rms_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def encode_flac(audio: np.ndarray, rate: int) -> bytes:
    """Encodes float audio as 16-bit FLAC bytes."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.T, -1.0, 1.0), rate, format='FLAC', subtype='PCM_16')
    return buf.getvalue()


PCM24_STEP = 2.0 ** -23


def encode_pcm24(audio: np.ndarray, rate: int, fmt: str = 'FLAC') -> bytes:
    """Encodes float audio ``[channels, samples]`` as 24-bit ``fmt`` ('FLAC' or 'WAV') bytes.

    Rounds each sample to the nearest 24-bit step here (libsndfile scales float input by
    2**23 - 1 for WAV and by 2**23 for FLAC, so the two would differ by a step): the same audio
    gives the same samples in both formats, and decoding gives back ``round(x * 2**23) / 2**23``
    exactly. Integer samples carry no timestamp, so equal audio gives equal bytes.
    """
    steps = np.clip(np.rint(audio.T * np.float32(2 ** 23)), -2 ** 23, 2 ** 23 - 1).astype(np.int32)
    buf = io.BytesIO()
    sf.write(buf, np.left_shift(steps, 8), rate, format=fmt, subtype='PCM_24')   # int32: the top 24 bits
    return buf.getvalue()


def decode_flac(data: bytes) -> np.ndarray:
    audio, _ = sf.read(io.BytesIO(data), dtype='float32', always_2d=True)
    return np.ascontiguousarray(audio.T)
