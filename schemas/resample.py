"""Sample-rate conversion, shared by decoding (schemas/audio_io.py) and the lossy codecs
(schemas/av_audio.py)."""
import numpy as np


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling with soxr (``[channels, samples]`` in and out)."""
    if rate_in == rate_out:
        return audio
    import soxr
    out = soxr.resample(np.ascontiguousarray(audio.T), rate_in, rate_out, quality='HQ')
    return np.ascontiguousarray(out.T, dtype=np.float32).reshape(audio.shape[0], -1)
