"""The codec's encoder as one exportable graph, and its ONNX export.

``EncoderGraph``: the encoder and the residual quantizer of the loaded weights (pretrained,
``--codec-path`` or random), weight norms folded: audio ``[batch, channels, samples]`` -> codes
``[batch, codebooks, frames]`` and the input scale (the 48 kHz model's normalisation).
``onnx_export`` writes it to ONNX (opset 17) for one segment length, cached under the codec
cache, keyed by the model, a hash of its weights, the segment length and the versions that shape
the file, and written atomically, so worker processes export once and then share the file.
Each export also leaves a note keyed by the files the weights load from (the random weights'
calibration file, ``--codec-path``, the cached hub snapshot; names, sizes, mtimes): a worker
whose weights have not changed finds its export from the note (``remembered_export``) and runs
it without importing PyTorch or loading the model. The runtimes are in codec_runtime.py.
"""
import copy
import hashlib
import json
import logging
import os
import tempfile
from typing import Optional

import numpy as np

from transforms.cache import cache_dir
from transforms.codec import _torch
from transforms.codec_calibration import cache_path as calibration_path

LOG = logging.getLogger(__name__)
EXPORT_VERSION = 1
OPSET = 17


def _graph_class():
    torch = _torch()

    class EncoderGraph(torch.nn.Module):
        """Normalisation (when the codec has it) -> encoder -> residual quantizer."""

        def __init__(self, encoder, quantize, normalize: bool):
            super().__init__()
            self.encoder, self.quantize, self.normalize = encoder, quantize, normalize

        def forward(self, audio):
            if self.normalize:
                mono = audio.mean(dim=1, keepdim=True)
                scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
                audio = audio / scale
            else:
                scale = audio.new_ones((audio.shape[0], 1, 1))
            codes = self.quantize(self.encoder(audio))            # [codebooks, batch, frames]
            return codes.transpose(0, 1), scale.reshape(-1)

    return EncoderGraph


def encoder_graph(codec):
    """The EncoderGraph of a loaded codec (either backend), weight norms folded; built once per
    codec and shared by its runtimes."""
    if getattr(codec, 'graph', None) is None:
        codec.graph = _build_graph(codec)
    return codec.graph


def _build_graph(codec):
    torch = _torch()
    model = copy.deepcopy(codec.model).cpu().float().eval()
    for module in model.modules():
        if torch.nn.utils.parametrize.is_parametrized(module, 'weight'):
            torch.nn.utils.parametrize.remove_parametrizations(module, 'weight', leave_parametrized=True)
    bandwidth = codec.spec.bandwidth_kbps
    if hasattr(model.quantizer, 'layers'):                       # transformers
        quantize = lambda emb: model.quantizer.encode(emb, bandwidth)   # noqa: E731
        normalize = bool(model.config.normalize)
    else:                                                        # the encodec package
        quantize = lambda emb: model.quantizer.encode(emb, model.frame_rate, bandwidth)   # noqa: E731
        normalize = bool(model.normalize)
    graph = _graph_class()(model.encoder, quantize, normalize)
    graph.quantizer = model.quantizer                            # registered, so .to() moves it
    return graph.eval()


def weights_digest(graph) -> str:
    """sha256 of the graph's parameters and buffers: what an export is keyed by."""
    if getattr(graph, 'digest', None) is None:
        graph.digest = _digest(graph)
    return graph.digest


def _digest(graph) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(graph.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return digest.hexdigest()


def library_versions() -> list:
    """torch's and transformers' versions (they shape an export and random weights), read
    without importing either."""
    from importlib import metadata
    return [metadata.version('torch').split('+')[0], metadata.version('transformers')]


def export_path(settings, digest: str, segment_samples: int) -> str:
    key = json.dumps([EXPORT_VERSION, OPSET, settings.spec.name, settings.backend, settings.weights_id, digest,
                      segment_samples] + library_versions())
    name = f'{settings.spec.name}-{segment_samples}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx'
    return os.path.join(cache_dir(), 'exports', name)


def weight_files(settings) -> Optional[list]:
    """(path, bytes, mtime in ns) of every file the settings' weights load from, found without
    loading them; None where only loading tells (weights not on disk yet, the encodec package's
    own download)."""
    if settings.weights == 'random':
        paths = [calibration_path(settings)]
    elif settings.path:
        paths = [settings.path] if os.path.isfile(settings.path) else sorted(
            os.path.join(root, f) for root, _, files in os.walk(settings.path) for f in files)
    elif settings.backend == 'transformers':
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        config = try_to_load_from_cache(settings.spec.hf_id, 'config.json')
        if not isinstance(config, str):
            return None
        snapshot = os.path.dirname(config)
        paths = sorted(os.path.join(snapshot, f) for f in os.listdir(snapshot))
    else:
        return None
    if not paths or not all(os.path.isfile(p) for p in paths):
        return None
    return [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]


def _note_path(settings, files: list) -> str:
    key = json.dumps([EXPORT_VERSION, settings.spec.name, settings.backend, settings.weights_id, files]
                     + library_versions())
    return os.path.join(cache_dir(), 'exports', 'notes', hashlib.sha256(key.encode()).hexdigest()[:24] + '.json')


def _write_note(codec, graph) -> None:
    files = weight_files(codec.settings)
    if files is None:
        return
    path = _note_path(codec.settings, files)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    with os.fdopen(fd, 'w') as handle:
        json.dump({'digest': weights_digest(graph), 'normalizes': bool(graph.normalize)}, handle)
    os.replace(tmp, path)


def remembered_export(settings, segment_samples: int) -> Optional[tuple]:
    """(ONNX path, whether the codec normalises its input) of an export of these weights for
    ``segment_samples`` made before, found from its note without loading the model; None if
    there is none (or the weight files changed since)."""
    files = weight_files(settings)
    if files is None:
        return None
    try:
        with open(_note_path(settings, files)) as handle:
            note = json.load(handle)
    except (OSError, ValueError):
        return None
    path = export_path(settings, note['digest'], segment_samples)
    return (path, bool(note['normalizes'])) if os.path.exists(path) else None


def onnx_export(codec, graph, segment_samples: int) -> str:
    """The cached ONNX file of ``graph`` for ``segment_samples`` (exported on first use)."""
    torch = _torch()
    path = export_path(codec.settings, weights_digest(graph), segment_samples)
    if os.path.exists(path):
        _write_note(codec, graph)
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    os.close(fd)
    dummy = torch.zeros((1, codec.spec.channels, segment_samples), device=next(graph.parameters()).device)
    LOG.info('exporting the %s encoder for %d-sample segments to %s', codec.spec.name, segment_samples, path)
    try:
        with torch.no_grad():
            torch.onnx.export(graph, (dummy,), tmp, input_names=['audio'], output_names=['codes', 'scales'],
                              dynamic_axes={'audio': {0: 'batch'}, 'codes': {0: 'batch'}, 'scales': {0: 'batch'}},
                              opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _write_note(codec, graph)
    return path
