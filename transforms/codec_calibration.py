"""Seeded random EnCodec weights whose codes vary with the audio.

With the libraries' default initialisation every codebook is zero and every frame
gets code 0. Here the architecture is built from a seeded RNG, then each residual
codebook is seeded, layer by layer, by k-means over the encoder frames of a fixed,
generated calibration signal (as EnCodec's own k-means initialisation does on the
first batch). The result is cached on disk, keyed by everything that shapes it, and
loaded back with ``weights_only=True``.
"""
import hashlib
import json
import os
import tempfile

import numpy as np

from transforms.cache import cache_dir
from transforms.synth import synth_mix

CALIBRATION_VERSION = 1
CALIBRATION_SONGS = 3
CALIBRATION_SONG_SECONDS = 16.0
KMEANS_ITERATIONS = 10
FRAMES_PER_CLUSTER = 8


def cache_path(settings) -> str:
    """Where the seeded random weights of ``settings`` are cached (found without importing torch)."""
    from importlib import metadata
    key = json.dumps([CALIBRATION_VERSION, settings.name, settings.backend, settings.seed,
                      settings.spec.config, metadata.version('torch').split('+')[0], metadata.version('transformers')],
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), 'codecs', f'{settings.name}-{settings.backend}-random-{digest}.pt')


def calibration_signal(spec, seed: int) -> np.ndarray:
    """A few seconds of synthesized music from several seeded songs, ``[channels, samples]``."""
    songs = [synth_mix(1_000_003 * (seed + 1) + i, CALIBRATION_SONG_SECONDS, spec.sample_rate_hz, spec.channels)
             for i in range(CALIBRATION_SONGS)]
    return np.concatenate(songs, axis=-1)


def _codebooks(model):
    """The residual codebook modules of either backend, in order."""
    if hasattr(model.quantizer, 'layers'):           # transformers
        return [layer.codebook for layer in model.quantizer.layers]
    return [layer._codebook for layer in model.quantizer.vq.layers]   # encodec package


def kmeans(frames, k: int, generator, iterations: int = KMEANS_ITERATIONS):
    """Lloyd's k-means: centers ``[k, dim]`` of ``frames [n, dim]`` started from frames; returns
    (centers, counts)."""
    import torch
    centers = frames[torch.randperm(frames.shape[0], generator=generator)[:k]].clone()
    counts = torch.zeros(k)
    for _ in range(iterations):
        assign = torch.cdist(frames, centers).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centers).index_add_(0, assign, frames)
        used = counts > 0
        centers[used] = sums[used] / counts[used, None]
    return centers, counts


def codebook_from_frames(frames, k: int, generator):
    """A ``k``-entry codebook for ``frames``: k-means with about FRAMES_PER_CLUSTER frames per
    cluster (so the residual left for the next layer stays as large as on unseen audio), the
    remaining entries spread around those clusters with the clusters' own spread."""
    import torch
    clusters = max(1, min(k, frames.shape[0] // FRAMES_PER_CLUSTER))
    centers, counts = kmeans(frames, clusters, generator)
    if clusters < k:
        spread = (frames - centers[torch.cdist(frames, centers).argmin(dim=1)]).std(dim=0, keepdim=True)
        parents = torch.randint(clusters, (k - clusters,), generator=generator)
        extra = centers[parents] + torch.randn((k - clusters, frames.shape[1]), generator=generator) * spread
        centers = torch.cat([centers, extra])
        counts = torch.cat([counts, torch.zeros(k - clusters)])
    return centers, counts


def seed_codebooks(model, frames, layers: int, seed: int) -> None:
    """Seeds the first ``layers`` residual codebooks from ``frames [n, dim]``, layer by layer."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    residual = frames.float()
    for codebook in _codebooks(model)[:layers]:
        k = codebook.embed.shape[0]
        centers, counts = codebook_from_frames(residual, k, generator)
        codebook.embed.copy_(centers)
        codebook.embed_avg.copy_(centers)
        codebook.cluster_size.copy_(counts)
        codebook.inited.fill_(1)
        residual = residual - centers[torch.cdist(residual, centers).argmin(dim=1)]


def _encoder_frames(model, audio: np.ndarray):
    import torch
    x = torch.from_numpy(audio[None])
    normalize = getattr(getattr(model, 'config', None), 'normalize', getattr(model, 'normalize', False))
    if normalize:
        x = x / (x.mean(dim=1, keepdim=True).pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8)
    return model.encoder(x)[0].T.contiguous()


def build_random_state_dict(settings, make_model) -> dict:
    """Builds the seeded architecture and calibrates its codebooks (on CPU)."""
    import torch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = make_model().eval()
    with torch.inference_mode():
        frames = _encoder_frames(model, calibration_signal(settings.spec, settings.seed))
    with torch.no_grad():
        seed_codebooks(model, frames.clone(), settings.spec.codebooks, settings.seed)
    return model.state_dict()


def random_state_dict(settings, make_model) -> dict:
    """The seeded random state dict, from the disk cache when present."""
    import torch
    path = cache_path(settings)
    if os.path.exists(path):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except (OSError, RuntimeError, EOFError):
            pass   # a damaged cache entry is rebuilt below
    state = build_random_state_dict(settings, make_model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    os.close(fd)
    torch.save(state, tmp)
    os.replace(tmp, path)
    return state
