"""Frame descriptors of mono audio in numpy: MFCCs with deltas, spectral shape, RMS and YIN f0.

One function, ``describe``, used by the descriptors task (every stem and mix) and by
``pipelines.query`` (the clip), so a clip cut out of a song gives the song's own numbers.

Frame convention (librosa's ``center=True``): frame ``f`` is centred on sample ``f * hop``;
its ``n_fft`` samples are ``[f * hop - n_fft // 2, f * hop + n_fft // 2)``, zero outside the
audio. A signal of ``n`` samples has ``1 + n // hop`` frames, and ``sample_offset = f * hop``
is where frame ``f`` sits in the audio: the frames of a clip cut at that offset line up with
the song's frames ``f, f + 1, ...``.

Per frame, float32 (``COLUMNS``):

- ``mfcc_0..12``: DCT-II (orthonormal) of the log-mel power spectrum, 128 Slaney mel bands
  (area-normalised, Slaney's mel scale: librosa's defaults), Hann-windowed 2048-point FFT,
  ``10 * log10(max(power, 1e-10))``. Unlike librosa's default there is no ``top_db`` clip
  against the loudest frame of the file: a frame's numbers depend on its own samples only.
- ``mfcc_delta_*``, ``mfcc_delta2_*``: Savitzky-Golay derivatives over 9 frames (librosa's
  ``feature.delta(width=9, order=1|2, mode='interp')``: in the middle the regression
  ``sum(n * x[t+n]) / 60``; the 4 frames at each end take the fit of the first or last 9).
- ``spectral_centroid`` (Hz, magnitude-weighted; 0 for silence), ``spectral_flatness``
  (geometric / arithmetic mean of the power spectrum floored at 1e-10; 1 for silence),
  ``spectral_rolloff`` (Hz below which 85 % of the magnitude lies), ``rms`` (of the frame's
  samples, unwindowed).
- ``f0`` (Hz): YIN (de Cheveigné & Kawahara 2002): difference function over a window of half
  the frame, cumulative mean normalised, the smallest lag in the 80 Hz..2 kHz range that is a
  local minimum below the absolute threshold 0.1, refined by parabolic interpolation. NaN where
  no such lag exists (unvoiced, noise) or the frame is silent (RMS below -80 dBFS).

The columns, and what the search compares (``index_features``, ``z_stats``), are in
``schemas/descriptor_columns.py``: the tables' schemas and the query read them too.
"""
import math

import numpy as np

from schemas.descriptor_columns import COLUMNS, N_MFCC

N_FFT = 2048
N_MELS = 128
DELTA_WIDTH = 9
ROLL_PERCENT = 0.85
FMIN_HZ = 80.0
FMAX_HZ = 2000.0
YIN_THRESHOLD = 0.1
SILENT_RMS = 1e-4              # -80 dBFS: no pitch in a silent frame
AMIN = 1e-10                   # power floor of the log-mel and flatness
CHUNK_FRAMES = 1024            # frames analysed at a time (bounded memory for long songs)



def settings(sample_rate_hz: int, hop_length: int) -> dict:
    """What shapes the descriptors (recorded in the manifest and stats.json; the query checks it)."""
    return {'sample_rate_hz': int(sample_rate_hz), 'hop_length': int(hop_length), 'n_fft': N_FFT,
            'n_mels': N_MELS, 'n_mfcc': N_MFCC, 'delta_width': DELTA_WIDTH, 'roll_percent': ROLL_PERCENT,
            'f0_range_hz': [FMIN_HZ, FMAX_HZ], 'yin_threshold': YIN_THRESHOLD,
            'frames': 'centred: frame f covers samples [f*hop - n_fft/2, f*hop + n_fft/2), zero-padded; '
                      'sample_offset = f*hop'}


def frame_count(num_samples: int, hop_length: int) -> int:
    return 1 + int(num_samples) // int(hop_length)


def check_hop(hop_length: int) -> None:
    if not 1 <= int(hop_length) <= N_FFT:
        raise ValueError(f'--hop-length must be between 1 and {N_FFT} samples, got {hop_length}')


# ---------------------------------------------------------------- filters (librosa's defaults)

def hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep, mel)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate_hz: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """``[n_mels, 1 + n_fft // 2]`` triangular filters from 0 Hz to Nyquist, Slaney area norm
    (librosa.filters.mel's defaults)."""
    fft_hz = np.linspace(0, sample_rate_hz / 2, 1 + n_fft // 2)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows ``[n_out, n_in]`` (scipy.fft.dct(norm='ortho'))."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy.signal.get_window('hann', n))."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


_FILTERS = {}


def _filters(sample_rate_hz: int):
    if sample_rate_hz not in _FILTERS:
        _FILTERS[sample_rate_hz] = (mel_filterbank(sample_rate_hz).T.copy(), dct_matrix(N_MFCC, N_MELS).T.copy(),
                                    np.linspace(0, sample_rate_hz / 2, 1 + N_FFT // 2), hann(N_FFT))
    return _FILTERS[sample_rate_hz]


# ---------------------------------------------------------------- per-frame analysis

def _framed(padded: np.ndarray, pad: int, length: int, hop: int, first: int, count: int) -> np.ndarray:
    """``count`` frames of ``length`` samples centred on ``(first + i) * hop`` (a strided view of
    the signal padded by ``pad`` zeros on each side)."""
    start = pad + first * hop - length // 2
    view = padded[start:start + (count - 1) * hop + length]
    return np.lib.stride_tricks.sliding_window_view(view, length)[::hop]


def _spectral(frames: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """MFCCs, centroid, flatness, rolloff and RMS of ``[frames, n_fft]`` samples: ``[frames, 17]``."""
    mel_t, dct_t, fft_hz, window = _filters(sample_rate_hz)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=-1))
    power = magnitude ** 2
    log_mel = 10.0 * np.log10(np.maximum(power @ mel_t, AMIN))
    mfcc = log_mel @ dct_t
    total = magnitude.sum(axis=-1)
    centroid = np.divide(magnitude @ fft_hz, total, out=np.zeros_like(total), where=total > 0)
    floored = np.maximum(power, AMIN)
    flatness = np.exp(np.mean(np.log(floored), axis=-1)) / np.mean(floored, axis=-1)
    cumulative = np.cumsum(magnitude, axis=-1)
    rolloff = fft_hz[np.argmax(cumulative >= ROLL_PERCENT * cumulative[:, -1:], axis=-1)]
    rms = np.sqrt(np.mean(frames ** 2, axis=-1))
    return np.column_stack([mfcc, centroid, flatness, rolloff, rms])


def yin_lags(sample_rate_hz: int) -> tuple:
    """(YIN frame length, window, shortest lag, longest lag) for 80 Hz..2 kHz at this rate."""
    min_lag = max(2, int(math.floor(sample_rate_hz / FMAX_HZ)))
    max_lag = int(math.ceil(sample_rate_hz / FMIN_HZ))
    length = N_FFT
    while length - length // 2 - 2 < max_lag:      # the window and the longest lag (+1) must fit
        length *= 2
    return length, length // 2, min_lag, max_lag


def yin(frames: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """f0 in Hz (NaN unvoiced) of ``[frames, yin frame length]`` samples."""
    length, window, min_lag, max_lag = yin_lags(sample_rate_hz)
    # d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = E(0) + E(tau) - 2 r(tau), r by FFT (no wrap: W + max_lag < length)
    spectrum = np.fft.rfft(frames, length, axis=-1)
    acf = np.fft.irfft(spectrum * np.conj(np.fft.rfft(frames[:, :window], length, axis=-1)), length,
                       axis=-1)[:, :max_lag + 2]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=-1)], axis=-1)
    lags = np.arange(max_lag + 2)
    window_energy = energy[:, lags + window] - energy[:, lags]
    diff = np.maximum(window_energy[:, :1] + window_energy - 2.0 * acf, 0.0)
    cumulative = np.cumsum(diff[:, 1:], axis=-1)
    cmnd = np.ones_like(diff)
    np.divide(diff[:, 1:] * lags[1:], cumulative, out=cmnd[:, 1:], where=cumulative > 0)
    # lags min_lag-1 .. max_lag+1: a trough is below both neighbours (or equal to the left one)
    band = cmnd[:, min_lag - 1:max_lag + 2]
    middle = band[:, 1:-1]
    trough = (middle <= band[:, :-2]) & (middle < band[:, 2:]) & (middle < YIN_THRESHOLD)
    voiced = trough.any(axis=-1) & (np.sqrt(window_energy[:, 0] / window) >= SILENT_RMS)
    pick = np.argmax(trough, axis=-1)
    rows = np.arange(len(frames))
    left, mid, right = band[rows, pick], band[rows, pick + 1], band[rows, pick + 2]
    curvature = left - 2.0 * mid + right
    shift = np.divide(left - right, 2.0 * curvature, out=np.zeros_like(mid), where=curvature > 0)
    period = min_lag + pick + np.clip(shift, -1.0, 1.0)
    f0 = np.where(voiced, sample_rate_hz / period, np.nan)
    return np.where((f0 >= FMIN_HZ * 0.99) & (f0 <= FMAX_HZ * 1.01), f0, np.nan)


def deltas(values: np.ndarray, order: int, width: int = DELTA_WIDTH) -> np.ndarray:
    """Savitzky-Golay derivative of ``order`` (1 or 2) along frames (axis 0) over ``width``
    frames, polynomial of degree ``order``; the ends take the fit of the first/last window
    (librosa.feature.delta, mode='interp'). Fewer frames than ``width``: the widest odd window
    that fits; under 3 frames, zeros."""
    frames = len(values)
    width = min(width, frames if frames % 2 else frames - 1)
    if width < 3:
        return np.zeros_like(values)
    half = width // 2
    n = np.arange(-half, half + 1, dtype=np.float64)
    if order == 1:
        weights = n / np.sum(n ** 2)
    else:
        centred = n ** 2 - np.mean(n ** 2)
        weights = 2.0 * centred / np.sum(centred ** 2)
    windows = np.lib.stride_tricks.sliding_window_view(values, width, axis=0)   # [frames-w+1, cols, w]
    middle = windows @ weights
    return np.concatenate([np.repeat(middle[:1], half, axis=0), middle, np.repeat(middle[-1:], half, axis=0)])


def describe(audio: np.ndarray, sample_rate_hz: int, hop_length: int = 1024) -> np.ndarray:
    """Descriptors of mono audio (``[samples]`` or ``[1, samples]``): float32 ``[frames, 44]``
    in ``COLUMNS`` order, ``frames = 1 + samples // hop_length``."""
    check_hop(hop_length)
    audio = np.asarray(audio)
    if audio.ndim == 2:
        if audio.shape[0] != 1:
            raise ValueError(f'describe() takes mono audio, got {audio.shape[0]} channels')
        audio = audio[0]
    sample_rate_hz = int(sample_rate_hz)
    yin_length = yin_lags(sample_rate_hz)[0]
    pad = max(N_FFT, yin_length) // 2
    padded = np.pad(audio.astype(np.float32, copy=False), (pad, pad))    # float64 a chunk at a time
    count = frame_count(len(audio), hop_length)
    base = np.empty((count, len(COLUMNS) - 2 * N_MFCC), dtype=np.float64)
    for first in range(0, count, CHUNK_FRAMES):
        n = min(CHUNK_FRAMES, count - first)
        frames = _framed(padded, pad, N_FFT, hop_length, first, n).astype(np.float64)
        spectral = _spectral(frames, sample_rate_hz)
        f0 = yin(_framed(padded, pad, yin_length, hop_length, first, n).astype(np.float64), sample_rate_hz)
        base[first:first + n] = np.column_stack([spectral, f0])
    mfcc = base[:, :N_MFCC]
    out = np.column_stack([mfcc, deltas(mfcc, 1), deltas(mfcc, 2), base[:, N_MFCC:]])
    return out.astype(np.float32)
