"""Codec runtimes: fixed-shape batches of audio in, EnCodec codes out.

The encoder and the residual quantizer of the loaded weights (pretrained, ``--codec-path``
or random) form one graph, ``EncoderGraph``: audio ``[batch, channels, samples]`` -> codes
``[batch, codebooks, frames]`` and the input scale (the 48 kHz model's normalisation;
codec_export.py builds and exports it). A runtime runs that graph for one segment length and
one batch size:

- ``torch``: the graph itself, eager, weight norms folded; CPU or CUDA, fp32/bf16/fp16.
- ``onnxruntime``: the graph exported to ONNX (opset 17), on ONNX Runtime's CPU provider,
  or its CUDA provider with ``onnxruntime-gpu``.
- ``openvino``: the same ONNX file compiled by OpenVINO for the fixed shape (CPU).

Batches are always ``batch_size`` items (short
ones are padded with silent items), so a window's codes never depend on its neighbours.
"""
import os

import numpy as np

from transforms.codec import PRECISIONS, _torch
from transforms.codec_export import encoder_graph, onnx_export


class Runtime:
    """Runs the codec on ``[batch_size, channels, segment_samples]`` float32 batches.

    Attributes:
        name: the registry name; version: the library's version.
        thread_invariant: codes do not depend on the thread count (checked by the tests).
    """
    name = None
    thread_invariant = False

    def __init__(self, codec, segment_samples: int, batch_size: int, threads: int):
        self.codec, self.segment_samples, self.batch_size, self.threads = codec, segment_samples, batch_size, threads
        self.shape = (batch_size, codec.spec.channels, segment_samples)
        self.device = codec.device
        self.version = None

    def encode(self, batch: np.ndarray):
        """-> (codes int64 ``[batch, codebooks, frames]``, scales float32 ``[batch]`` or None)."""
        if batch.shape != self.shape or batch.dtype != np.float32:
            raise ValueError(f'the {self.name} runtime takes float32 batches of {self.shape}, not '
                             f'{batch.dtype} {batch.shape}')
        codes, scales = self._run(np.ascontiguousarray(batch))
        return codes.astype(np.int64), (scales.astype(np.float32) if self.codec.normalizes else None)



class TorchRuntime(Runtime):
    """The graph in eager PyTorch (autocast for bf16/fp16). Thread count and, on CPU, the batch
    shape can flip a near-tie: items run one by one on CPU, and the threads are recorded."""
    name = 'torch'

    def __init__(self, codec, segment_samples, batch_size, threads):
        super().__init__(codec, segment_samples, batch_size, threads)
        self.torch = _torch()
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


class OnnxRuntime(Runtime):
    """The exported graph on ONNX Runtime (all graph optimisations; CPU or CUDA provider)."""
    name = 'onnxruntime'
    thread_invariant = True

    def __init__(self, codec, segment_samples, batch_size, threads):
        super().__init__(codec, segment_samples, batch_size, threads)
        ort = _import('onnxruntime', 'onnxruntime (or onnxruntime-gpu for CUDA)')
        path = onnx_export(codec, encoder_graph(codec), segment_samples)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        providers = ['CPUExecutionProvider']
        if self.device.startswith('cuda'):
            if 'CUDAExecutionProvider' not in ort.get_available_providers():
                raise ValueError('--codec-runtime=onnxruntime on CUDA needs onnxruntime-gpu: '
                                 'pip install onnxruntime-gpu')
            index = int(self.device.split(':')[1]) if ':' in self.device else 0
            providers = [('CUDAExecutionProvider', {'device_id': index})]
        self.session = ort.InferenceSession(path, options, providers=providers)
        self.version = ort.__version__

    def _run(self, batch):
        codes, scales = self.session.run(None, {'audio': batch})
        return codes, scales


class OpenVinoRuntime(Runtime):
    """The exported graph compiled by OpenVINO for the fixed batch shape, fp32 (CPU)."""
    name = 'openvino'
    thread_invariant = True

    def __init__(self, codec, segment_samples, batch_size, threads):
        super().__init__(codec, segment_samples, batch_size, threads)
        if self.device != 'cpu':
            raise ValueError(f'--codec-runtime=openvino runs on the CPU, not --device={self.device}')
        ov = _import('openvino', 'openvino')
        path = onnx_export(codec, encoder_graph(codec), segment_samples)
        core = ov.Core()
        model = core.read_model(path)
        model.reshape({'audio': list(self.shape)})
        # OpenVINO pins its threads to cores counted from the first: worker processes that each
        # take a share of the cores would all pin to the same ones (two 1-thread processes on
        # 2 cores ran at half speed). Pinning only when this process may use every core.
        compiled = core.compile_model(model, 'CPU', {'INFERENCE_NUM_THREADS': threads,
                                                     'INFERENCE_PRECISION_HINT': 'f32',
                                                     'PERFORMANCE_HINT': 'LATENCY',
                                                     'ENABLE_CPU_PINNING': threads >= (os.cpu_count() or 1)})
        self.request = compiled.create_infer_request()
        self.version = ov.get_version()

    def _run(self, batch):
        out = self.request.infer({'audio': batch})
        codes, scales = (out[port] for port in self.request.model_outputs)
        return np.array(codes), np.array(scales)


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


def load_runtime(codec, segment_samples: int, batch_size: int):
    """The runtime the codec's settings name, for one segment length and batch size."""
    settings = codec.settings
    name = resolve_runtime(settings.runtime, codec.device, settings.precision)
    if settings.precision not in PRECISIONS:
        raise ValueError(f'--codec-precision={settings.precision!r}')
    return RUNTIMES[name](codec, segment_samples, batch_size, max(1, settings.threads))


# Segments per forward pass with --encode-batch-size=0: one on CPU (no runtime runs faster per
# audio second with more, and memory grows with the batch: benchmarks/bench_codec.py); 32 on CUDA,
# 64 windows at the default span of 2 windows per segment.
AUTO_BATCH_SIZE = {'cpu': 1, 'cuda': 32}
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
    return 'cuda' if _torch().cuda.is_available() else 'cpu'


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
