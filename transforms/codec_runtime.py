"""Codec runtimes: fixed-shape batches of audio in, EnCodec codes out.

The encoder and the residual quantizer of the loaded weights (pretrained, ``--codec-path``
or random) form one graph, ``EncoderGraph``: audio ``[batch, channels, samples]`` -> codes
``[batch, codebooks, frames]`` and the input scale (the 48 kHz model's normalisation;
codec_export.py builds it and exports its two parts, ``front`` up to the LSTM and ``tail``
from it). A runtime runs that graph for one batch size and segments of any whole number of
frames:

- ``torch``: the graph itself, eager, weight norms folded; CPU or CUDA, fp32/bf16/fp16.
- ``onnxruntime``: the parts exported to ONNX (opset 17), on ONNX Runtime's CPU provider,
  or its CUDA provider with ``onnxruntime-gpu``.
- ``openvino``: the same ONNX files compiled by OpenVINO (CPU).

Batches are always ``batch_size`` items (short ones are padded with silent items), so a
window's codes never depend on its neighbours. On the CPU every item is encoded on its own
terms: the exported runtimes run the front one segment at a time (its activations grow with
the audio) and the tail on all the batch's embeddings at once (the LSTM's weights are read once
per frame for the whole batch instead of once per segment: it is memory-bound alone), and
silent items take codes computed once per runtime.
"""
import os

import numpy as np

from transforms.codec import PRECISIONS, _torch, quick_device
from transforms.codec_export import encoder_graph, onnx_export, remembered_export


class Runtime:
    """Runs the codec on ``[batch_size, channels, samples]`` float32 batches, ``samples`` a whole
    number of the codec's frames (one batch, one length; lengths may differ between batches).

    Attributes:
        name: the registry name; version: the library's version.
        thread_invariant: codes do not depend on the thread count (checked by the tests).
    """
    name = None
    thread_invariant = False

    def __init__(self, spec, device: str, normalizes: bool, batch_size: int, threads: int):
        self.spec, self.device, self.normalizes = spec, device, normalizes
        self.batch_size, self.threads = batch_size, threads
        self.version, self._silence = None, {}

    def encode(self, batch: np.ndarray):
        """-> (codes int64 ``[batch, codebooks, frames]``, scales float32 ``[batch]`` or None)."""
        if (batch.ndim != 3 or batch.shape[:2] != (self.batch_size, self.spec.channels)
                or batch.shape[2] % self.spec.hop_length or batch.dtype != np.float32):
            raise ValueError(f'the {self.name} runtime takes float32 batches of ({self.batch_size}, '
                             f'{self.spec.channels}, a multiple of {self.spec.hop_length} samples), not '
                             f'{batch.dtype} {batch.shape}')
        batch = np.ascontiguousarray(batch)
        codes, scales = self._run_loud(batch) if self.device == 'cpu' else self._run(batch)
        return codes.astype(np.int64), (scales.astype(np.float32) if self.normalizes else None)

    def _run_loud(self, batch: np.ndarray):
        """``_run`` on the batch's items that are not silent (CPU: items are encoded one by one or
        by a tail whose items do not interact); silent items take the codes of silence, encoded
        once."""
        loud = np.flatnonzero(batch.reshape(len(batch), -1).any(axis=1))
        if len(loud) == len(batch):
            return self._run(batch)
        length = batch.shape[-1]
        if length not in self._silence:
            self._silence[length] = self._run(np.zeros_like(batch[:1]))
        codes, scales = (np.repeat(part, len(batch), axis=0) for part in self._silence[length])
        if len(loud):
            codes[loud], scales[loud] = self._run(batch[loud])
        return codes, scales


class TorchRuntime(Runtime):
    """The graph in eager PyTorch (autocast for bf16/fp16). Thread count and, on CPU, the batch
    shape can flip a near-tie: items run one by one on CPU, and the threads are recorded."""
    name = 'torch'

    def __init__(self, codec, batch_size, threads):
        super().__init__(codec.spec, codec.device, codec.normalizes, batch_size, threads)
        self.codec, self.torch = codec, _torch()
        self.graph = encoder_graph(codec).to(self.device)
        self.version = self.torch.__version__
        self.one_by_one = self.device == 'cpu'   # CUDA: the whole batch in one forward pass

    def _run(self, batch):
        torch = self.torch
        items = [batch[i:i + 1] for i in range(len(batch))] if self.one_by_one else [batch]
        codes, scales = [], []
        with torch.inference_mode(), self.codec.autocast():
            for item in items:
                c, s = self.graph(torch.from_numpy(item).to(self.device))
                codes.append(c.cpu().numpy())
                scales.append(s.float().cpu().numpy())
        return np.concatenate(codes), np.concatenate(scales)


class ExportedRuntime(Runtime):
    """A runtime of an export's two ONNX files (``paths``: front and tail), each opened by the
    subclass's ``session``: made from a loaded codec with ``of_codec`` (exported on first use), or
    from an export found by its note (load_exported_runtime: no PyTorch, no model). On the CPU
    the front runs one item at a time and the tail once on the embeddings of all of them; on
    CUDA both run on the whole batch. ``session(path)`` gives a callable running the ONNX file at
    ``path`` on a batch of any size: array -> list of output arrays."""

    def __init__(self, paths: dict, spec, device, normalizes, batch_size, threads):
        super().__init__(spec, device, normalizes, batch_size, threads)
        self.front_batch = 1 if device == 'cpu' else batch_size
        self.front, self.tail = self.session(paths['front']), self.session(paths['tail'])

    @classmethod
    def of_codec(cls, codec, batch_size, threads):
        return cls(onnx_export(codec, encoder_graph(codec)), codec.spec, codec.device, codec.normalizes,
                   batch_size, threads)

    def _run(self, batch):
        step = self.front_batch
        fronts = [self.front(batch[i:i + step]) for i in range(0, len(batch), step)]
        embeddings = np.concatenate([f[0] for f in fronts])
        scales = np.concatenate([f[1] for f in fronts])
        return self.tail(embeddings)[0], scales


class OnnxRuntime(ExportedRuntime):
    """The exported parts on ONNX Runtime (all graph optimisations; CPU or CUDA provider)."""
    name = 'onnxruntime'
    thread_invariant = True

    def session(self, path: str):
        ort = _import('onnxruntime', 'onnxruntime (or onnxruntime-gpu for CUDA)')
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        providers = ['CPUExecutionProvider']
        if self.device.startswith('cuda'):
            if 'CUDAExecutionProvider' not in ort.get_available_providers():
                raise ValueError('--codec-runtime=onnxruntime on CUDA needs onnxruntime-gpu: '
                                 'pip install onnxruntime-gpu')
            index = int(self.device.split(':')[1]) if ':' in self.device else 0
            providers = [('CUDAExecutionProvider', {'device_id': index})]
        session = ort.InferenceSession(path, options, providers=providers)
        self.version = ort.__version__
        name = session.get_inputs()[0].name
        return lambda array: session.run(None, {name: array})


class OpenVinoRuntime(ExportedRuntime):
    """The exported parts compiled by OpenVINO, fp32 (CPU), for any batch. Compiled models are
    not cached (OpenVINO's CACHE_DIR): a tail loaded from that cache gave a segment other codes
    in a batch of 8 than alone, where a compiled one gives the same."""
    name = 'openvino'
    thread_invariant = True

    def session(self, path: str):
        if self.device != 'cpu':
            raise ValueError(f'--codec-runtime=openvino runs on the CPU, not --device={self.device}')
        ov = _import('openvino', 'openvino')
        core = ov.Core()
        # OpenVINO pins its threads to cores counted from the first: worker processes that each
        # take a share of the cores would all pin to the same ones (two 1-thread processes on
        # 2 cores ran at half speed). Pinning only when this process may use every core.
        compiled = core.compile_model(path, 'CPU', {'INFERENCE_NUM_THREADS': self.threads,
                                                    'INFERENCE_PRECISION_HINT': 'f32',
                                                    'PERFORMANCE_HINT': 'LATENCY',
                                                    'ENABLE_CPU_PINNING': self.threads >= (os.cpu_count() or 1)})
        request = compiled.create_infer_request()
        self.version = ov.get_version()
        outputs = compiled.outputs
        # The request's output buffers are reused by its next inference: each result is copied.
        return lambda array: [np.array(found[port]) for found in [request.infer({0: array})] for port in outputs]


def _import(module: str, install: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f'--codec-runtime={module} needs {install}: pip install {install.split()[0]}') from e


RUNTIMES = {'torch': TorchRuntime, 'onnxruntime': OnnxRuntime, 'openvino': OpenVinoRuntime}
# What ``auto`` takes, by device kind: the fastest in benchmarks/bench_codec.py on this project's
# CPU machines (OpenVINO), and PyTorch on CUDA (cuDNN, autocast for bf16).
AUTO_RUNTIME = {'cpu': 'openvino', 'cuda': 'torch'}


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """The runtime ``--codec-runtime`` names on ``device`` (a resolved device).

    Raises:
        ValueError: an unknown runtime, or one that cannot run this device or precision.
    """
    if runtime == 'auto':
        runtime = AUTO_RUNTIME['cpu' if device == 'cpu' else 'cuda']
        if precision != 'fp32':
            runtime = 'torch'
    if runtime not in RUNTIMES:
        raise ValueError(f'--codec-runtime={runtime!r}: choose auto or one of {sorted(RUNTIMES)}')
    if runtime != 'torch' and precision != 'fp32':
        raise ValueError(f'--codec-precision={precision} runs under torch autocast; '
                         f'--codec-runtime={runtime} encodes in fp32')
    if runtime == 'openvino' and device != 'cpu':
        raise ValueError(f'--codec-runtime=openvino runs on the CPU, not --device={device}')
    return runtime


def load_runtime(codec, batch_size: int):
    """The runtime the codec's settings name, for one batch size."""
    settings = codec.settings
    name = resolve_runtime(settings.runtime, codec.device, settings.precision)
    if settings.precision not in PRECISIONS:
        raise ValueError(f'--codec-precision={settings.precision!r}')
    cls = RUNTIMES[name]
    make = cls.of_codec if issubclass(cls, ExportedRuntime) else cls
    return make(codec, batch_size, max(1, settings.threads))


def load_exported_runtime(settings, batch_size: int):
    """The runtime the settings name when it runs an export made before on the CPU, found from its
    note without PyTorch or the model (a worker's quick start); None otherwise."""
    device = quick_device(settings.device)
    if device != 'cpu' or settings.precision != 'fp32':
        return None
    cls = RUNTIMES[resolve_runtime(settings.runtime, device, settings.precision)]
    found = issubclass(cls, ExportedRuntime) and remembered_export(settings)
    if not found:
        return None
    paths, normalizes = found
    return cls(paths, settings.spec, device, normalizes, batch_size, max(1, settings.threads))


# Segments per batch with --encode-batch-size=0: 8 on CPU (the exported runtimes' LSTM tail runs
# them together, their fronts one by one: benchmarks/bench_codec.py), 32 on CUDA, 64 windows at
# the default span of 2 windows per segment.
AUTO_BATCH_SIZE = {'cpu': 8, 'cuda': 32}
DISTRIBUTIONS = {'torch': 'torch', 'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def _installed_version(runtime: str) -> str:
    from importlib import metadata
    names = ('onnxruntime', 'onnxruntime-gpu') if runtime == 'onnxruntime' else (DISTRIBUTIONS[runtime],)
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return 'not installed'


def launch_device(device: str) -> str:
    """The device kind a worker will use, as the launching process sees it: ``--device`` when
    named, else whether this process sees CUDA."""
    if device != 'auto':
        return device
    return quick_device(device) or ('cuda' if _torch().cuda.is_available() else 'cpu')


def identity(settings, batch_size: int) -> dict:
    """What decides the codes besides the weights: runtime and version, device, precision, and
    the thread count and batch size where the runtime's codes depend on them (``None`` where
    they do not: the manifest says so, and the run's fingerprint leaves them out)."""
    device = launch_device(settings.device)
    runtime = resolve_runtime(settings.runtime, 'cpu' if device == 'cpu' else device, settings.precision)
    cls = RUNTIMES[runtime]
    on_cpu = device == 'cpu'
    return {'runtime': runtime, 'runtime_version': _installed_version(runtime),
            'device': 'cpu' if on_cpu else 'cuda', 'precision': settings.precision,
            'threads': None if cls.thread_invariant or not on_cpu else settings.threads,
            'batch_size': None if on_cpu else batch_size or AUTO_BATCH_SIZE['cuda']}
