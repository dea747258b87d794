"""Decoding, channel conversion, resampling and FLAC encoding of audio.

Audio is float32 numpy ``[channels, samples]``.
"""
import io
import os

import numpy as np
import soundfile as sf

from schemas.audio_limits import AudioDecodeError, ContainerUnreadable, check_header  # noqa: F401 (re-exported)
from schemas.resample import resample  # noqa: F401 (re-exported: decoding resamples to the asked rate)

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aif', '.aiff', '.m4a', '.aac', '.opus', '.wma')


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def decode_audio(data: bytes, name: str, max_seconds: float):
    """Decodes audio bytes with soundfile, or PyAV (FFmpeg's libraries, in process) for what
    libsndfile cannot read (AAC, ALAC, WMA, Opus in containers). The header's rate, channels and
    length are checked before any sample is decoded. Returns ``(audio [channels, samples] float32,
    sample_rate_hz)``.

    Raises:
        AudioDecodeError: unreadable, empty, too long, out-of-bounds or non-finite audio.
    """
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        audio, rate = _decode_with_av(data, name, max_seconds, sf_error)
    else:
        check_header(name, int(info.samplerate), int(info.channels),
                     info.frames / info.samplerate if info.samplerate > 0 else 0.0, max_seconds)
        try:
            audio, rate = sf.read(io.BytesIO(data), dtype='float32', always_2d=True,
                                  frames=int(max_seconds * info.samplerate) + 1)
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


def _decode_with_av(data: bytes, name: str, max_seconds: float, sf_error: Exception):
    from schemas.av_audio import decode_file
    try:
        return decode_file(data, name, max_seconds)
    except ContainerUnreadable as e:
        raise AudioDecodeError(f'{name}: neither libsndfile ({_reason(sf_error)}) nor FFmpeg '
                               f'({e.reason}) can read it') from e


def decode_streams(data: bytes, name: str, streams, max_seconds: float) -> dict:
    """Decodes audio streams ``streams`` (0-based, audio streams only) of a multi-stream file (a
    MUSDB18 ``.stem.mp4``) in one pass over it. Returns ``{stream: (audio [channels, samples]
    float32, rate) or AudioDecodeError}``: a stream that does not exist or cannot be decoded is an
    error of its own, the others still decode.

    Raises:
        AudioDecodeError: the container cannot be opened at all.
    """
    from schemas.av_audio import decode_streams as demux
    results = demux(data, name, streams, max_seconds)
    for index, result in results.items():
        if not isinstance(result, Exception):
            try:
                check_audio(result[0], f'{name} (stream {index})', result[1], max_seconds)
            except AudioDecodeError as e:
                results[index] = e
    return results


def decode_stream(data: bytes, stream: int, name: str, max_seconds: float):
    """One audio stream of a multi-stream file: ``(audio, rate)``. Raises AudioDecodeError."""
    result = decode_streams(data, name, [stream], max_seconds)[stream]
    if isinstance(result, Exception):
        raise result
    return result


_G = 0.7071067811865476     # -3 dB: ITU-R BS.775's weight of centre and surround channels
# (left, right) weights of each channel, in the WAVE / FFmpeg default order for each count; LFE
# (the 4th of 5.1, 6.1 and 7.1) is dropped, as BS.775 does.
_TO_STEREO = {
    3: ((1, 0), (0, 1), (_G, _G)),                                        # L R C
    4: ((1, 0), (0, 1), (_G, 0), (0, _G)),                                # quad: L R Ls Rs
    5: ((1, 0), (0, 1), (_G, _G), (_G, 0), (0, _G)),                      # 5.0
    6: ((1, 0), (0, 1), (_G, _G), (0, 0), (_G, 0), (0, _G)),              # 5.1
    7: ((1, 0), (0, 1), (_G, _G), (0, 0), (0.5, 0.5), (_G, 0), (0, _G)),  # 6.1: L R C LFE Cs Ls Rs
    8: ((1, 0), (0, 1), (_G, _G), (0, 0), (_G, 0), (0, _G), (_G, 0), (0, _G)),   # 7.1
}


def stereo_downmix(audio: np.ndarray) -> np.ndarray:
    """Multichannel ``[channels, samples]`` to stereo: ITU-R BS.775 weights for 3 to 8 channels
    (centre at -3 dB to both sides, surrounds at -3 dB to their side, LFE dropped), each side
    divided by its weights' sum so a full-scale input stays within full scale; other counts:
    even channels left, odd right, averaged."""
    weights = _TO_STEREO.get(audio.shape[0])
    if weights is None:
        return np.stack([audio[0::2].mean(axis=0), audio[1::2].mean(axis=0)]).astype(np.float32)
    matrix = np.asarray(weights, np.float32).T                      # [2, channels]
    matrix /= matrix.sum(axis=1, keepdims=True)
    return (matrix @ audio).astype(np.float32, copy=False)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Down-mixes or duplicates channels to reach ``channels`` (1 or 2): stereo to mono is the mean;
    more than two channels go through ``stereo_downmix`` first."""
    have = audio.shape[0]
    if have == channels:
        return audio
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if have > 2:
        audio = stereo_downmix(audio)
        if channels == 2:
            return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float32)
    raise ValueError(f'cannot convert {have} channels to {channels}')


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


MIX_HEADROOM = 0.99       # the peak a mix is scaled down to when it would clip


def peak_of(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def gain_for_peak(peak: float) -> float:
    """The gain that brings ``peak`` to at most MIX_HEADROOM (1.0 when already below)."""
    return min(1.0, MIX_HEADROOM / peak) if peak > 0 else 1.0


def headroom_gain(audio: np.ndarray) -> float:
    """The gain that brings the audio's peak to at most MIX_HEADROOM (1.0 when already below)."""
    return gain_for_peak(peak_of(audio))


def scaled(audio: np.ndarray, gain: float) -> np.ndarray:
    """``audio`` times ``gain`` as float32 (the same array when the gain is 1)."""
    return audio if gain == 1.0 else (audio * np.float32(gain)).astype(np.float32)
