"""The codec's encoder as an exportable graph in two parts, and their ONNX export.

``EncoderGraph``: the encoder and the residual quantizer of the loaded weights (pretrained,
``--codec-path`` or random), weight norms folded: audio ``[batch, channels, samples]`` -> codes
``[batch, codebooks, frames]`` and the input scale (the 48 kHz model's normalisation). It is
cut at the encoder's LSTM: ``front`` (normalisation and convolutions, whose activations grow
with the audio: the CPU runtimes run it one segment at a time) and ``tail`` (LSTM, last
convolution, quantizer: a few MB of input per segment, but one small matrix product per frame,
bound by memory traffic unless many segments share it: the runtimes run it on the whole batch).
``onnx_export`` writes both to ONNX (opset 17) with the batch and the length left open (one
export serves every segment length that is a whole number of frames), cached under the codec
cache, keyed by the model, a hash of its weights and the versions that shape the files, and
written atomically, so worker processes export once and then share the files.
Each export also leaves a note keyed by the files the weights load from (the random weights'
calibration file, ``--codec-path``, the cached hub snapshot; names, sizes, mtimes): a worker
whose weights have not changed finds its export from the note (``remembered_export``) and runs
it without importing PyTorch or loading the model. The runtimes are in codec_runtime.py.
"""
import contextlib
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
EXPORT_VERSION = 2
PARTS = ('front', 'tail')
TRACE_FRAMES = 128          # the length the export traces (any whole number of frames would do)
OPSET = 17


def _graph_classes():
    torch = _torch()

    class EncoderFront(torch.nn.Module):
        """Normalisation (when the codec has it) -> the encoder's convolutions: audio -> the
        embeddings the LSTM reads ``[batch, dimension, frames]`` and the input scale ``[batch]``."""

        def __init__(self, layers, normalize: bool):
            super().__init__()
            self.layers, self.normalize = torch.nn.ModuleList(layers), normalize

        def forward(self, audio):
            if self.normalize:
                mono = audio.mean(dim=1, keepdim=True)
                scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
                audio = audio / scale
            else:
                scale = audio.new_ones((audio.shape[0], 1, 1))
            for layer in self.layers:
                audio = layer(audio)
            return audio, scale.reshape(-1)

    class EncoderTail(torch.nn.Module):
        """The encoder's LSTM and last convolution -> the residual quantizer: embeddings -> codes
        ``[batch, codebooks, frames]``. Each item's codes depend on that item alone."""

        def __init__(self, layers, quantizer, quantize):
            super().__init__()
            self.layers, self.quantizer, self.quantize = torch.nn.ModuleList(layers), quantizer, quantize

        def forward(self, embeddings):
            for layer in self.layers:
                embeddings = layer(embeddings)
            return self.quantize(embeddings).transpose(0, 1)      # [codebooks, batch, frames] -> batch first

    class EncoderGraph(torch.nn.Module):
        """front -> tail: audio ``[batch, channels, samples]`` -> (codes, input scale)."""

        def __init__(self, front, tail):
            super().__init__()
            self.front, self.tail = front, tail
            self.normalize = front.normalize

        def forward(self, audio):
            embeddings, scale = self.front(audio)
            return self.tail(embeddings), scale

    return EncoderFront, EncoderTail, EncoderGraph


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
            # A deep copy shares the original's parametrized class, from which removing the
            # parametrization deletes the `weight` property: the copy gets a class of its own.
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            torch.nn.utils.parametrize.remove_parametrizations(module, 'weight', leave_parametrized=True)
    bandwidth = codec.spec.bandwidth_kbps
    if hasattr(model.quantizer, 'layers'):                       # transformers
        quantize = lambda emb: model.quantizer.encode(emb, bandwidth)   # noqa: E731
        normalize, layers = bool(model.config.normalize), list(model.encoder.layers)
    else:                                                        # the encodec package
        quantize = lambda emb: model.quantizer.encode(emb, model.frame_rate, bandwidth)   # noqa: E731
        normalize, layers = bool(model.normalize), list(model.encoder.model)
    lstm = next((i for i, layer in enumerate(layers) if 'LSTM' in type(layer).__name__), None)
    if lstm is None:
        raise ValueError(f'{codec.spec.name}: the encoder has no LSTM layer to split the graph at')
    front_class, tail_class, graph_class = _graph_classes()
    graph = graph_class(front_class(layers[:lstm], normalize), tail_class(layers[lstm:], model.quantizer, quantize))
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


def export_paths(settings, digest: str) -> dict:
    """{part: ONNX path} of an export of these weights."""
    key = json.dumps([EXPORT_VERSION, OPSET, settings.spec.name, settings.backend, settings.weights_id, digest]
                     + library_versions())
    stem = f'{settings.spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}'
    return {part: os.path.join(cache_dir(), 'exports', f'{stem}-{part}.onnx') for part in PARTS}


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


def remembered_export(settings) -> Optional[tuple]:
    """({part: ONNX path}, whether the codec normalises its input) of an export of these weights
    made before, found from its note without loading the model; None if there is none (or the
    weight files changed since)."""
    files = weight_files(settings)
    if files is None:
        return None
    try:
        with open(_note_path(settings, files)) as handle:
            note = json.load(handle)
    except (OSError, ValueError):
        return None
    paths = export_paths(settings, note['digest'])
    return (paths, bool(note['normalizes'])) if all(map(os.path.exists, paths.values())) else None


def onnx_export(codec, graph) -> dict:
    """{part: cached ONNX file} of ``graph``'s front and tail (exported on first use; the front
    takes ``audio``, the tail ``embeddings``, both of any batch and any length).

    The trace runs on a whole number of frames, where the convolutions add no extra padding
    at the end, so the files hold no length of their own: the runtimes take segments of whole
    frames (``Runtime.encode`` checks it)."""
    torch = _torch()
    paths = export_paths(codec.settings, weights_digest(graph))
    if not all(map(os.path.exists, paths.values())):
        LOG.info('exporting the %s encoder to %s', codec.spec.name, paths['front'])
        samples = TRACE_FRAMES * codec.spec.hop_length
        audio = torch.zeros((1, codec.spec.channels, samples), device=next(graph.parameters()).device)
        with torch.no_grad():
            embeddings = graph.front(audio)[0]
        with _reflect_pads_as_slices():
            _export(graph.front, audio, paths['front'], {'audio': {0: 'batch', 2: 'samples'},
                                                          'embeddings': {0: 'batch', 2: 'frames'},
                                                          'scales': {0: 'batch'}})
            _export(graph.tail, embeddings, paths['tail'], {'embeddings': {0: 'batch', 2: 'frames'},
                                                            'codes': {0: 'batch', 2: 'frames'}})
    _write_note(codec, graph)
    return paths


@contextlib.contextmanager
def _reflect_pads_as_slices():
    """While exporting, the convolutions' reflect padding is written as slices and a concat: the
    same values, but ops the runtimes keep in their convolutions' memory layout (OpenVINO ran
    ``Pad(reflect)`` in plain layout with a reorder on each side: 15 % of the front's time)."""
    torch = _torch()
    from transformers.models.encodec import modeling_encodec
    conv = modeling_encodec.EncodecConv1d
    original = conv.__dict__['_pad1d']

    def pad1d(x, paddings, mode='zero', value=0.0):
        left, right = paddings
        if mode != 'reflect' or x.shape[-1] <= max(paddings):
            return original.__func__(x, paddings, mode, value)
        parts = [x[..., 1:left + 1].flip(-1)] if left else []
        parts += [x] + ([x[..., -right - 1:-1].flip(-1)] if right else [])
        return torch.cat(parts, dim=-1)

    patched = [(conv, '_pad1d', original, staticmethod(pad1d))]
    try:
        from encodec.modules import conv as encodec_conv          # the encodec package's SConv1d
        patched.append((encodec_conv, 'pad1d', encodec_conv.pad1d,
                        lambda x, paddings, mode='zero', value=0.0: pad1d(x, paddings, mode, value)))
    except ImportError:
        pass
    for owner, name, _, replacement in patched:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, kept, _ in patched:
            setattr(owner, name, kept)


def _export(module, example, path: str, axes: dict) -> None:
    """``module`` to ONNX at ``path`` (``axes``: {input or output name: its open axes}, inputs
    first), written under a temporary name and renamed."""
    torch = _torch()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    os.close(fd)
    try:
        with torch.no_grad():
            names = list(axes)
            torch.onnx.export(module, (example,), tmp, input_names=names[:1], output_names=names[1:],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
