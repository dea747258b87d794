"""The codec registry: EnCodec models by name, with pretrained or seeded random weights.

``encodec_32khz`` (MusicGen's codec) is the default. The maintained ``transformers``
EncodecModel classes serve all three models; the ``encodec`` package is a second
backend for the 24/48 kHz models. ``random`` weights build the same architecture
from a seed and seed each codebook from encoder frames of a generated calibration
signal (see ``codec_calibration``), so codes vary with the audio.
"""
import contextlib
import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecSpec:
    name: str
    hf_id: str
    sample_rate_hz: int
    channels: int
    hop_length: int
    codebook_size: int
    bandwidth_kbps: float
    config: dict
    encodec_package_model: str = None   # constructor name in the ``encodec`` package

    @property
    def frame_rate(self) -> float:
        return self.sample_rate_hz / self.hop_length

    @property
    def codebooks(self) -> int:
        return max(1, int(math.floor(self.bandwidth_kbps * 1000 / (math.log2(self.codebook_size) *
                                                                   math.ceil(self.frame_rate)))))


CODECS = {
    'encodec_32khz': CodecSpec(
        name='encodec_32khz', hf_id='facebook/encodec_32khz', sample_rate_hz=32000, channels=1,
        hop_length=640, codebook_size=2048, bandwidth_kbps=2.2,
        config=dict(audio_channels=1, sampling_rate=32000, codebook_size=2048, codebook_dim=128,
                    num_filters=64, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2],
                    use_causal_conv=False, use_conv_shortcut=False, normalize=False,
                    norm_type='weight_norm', pad_mode='reflect', chunk_length_s=None, overlap=None)),
    'encodec_24khz': CodecSpec(
        name='encodec_24khz', hf_id='facebook/encodec_24khz', sample_rate_hz=24000, channels=1,
        hop_length=320, codebook_size=1024, bandwidth_kbps=6.0,
        config=dict(audio_channels=1, sampling_rate=24000, codebook_size=1024,
                    target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0], use_causal_conv=True,
                    normalize=False, norm_type='weight_norm', chunk_length_s=None, overlap=None),
        encodec_package_model='encodec_model_24khz'),
    'encodec_48khz': CodecSpec(
        name='encodec_48khz', hf_id='facebook/encodec_48khz', sample_rate_hz=48000, channels=2,
        hop_length=320, codebook_size=1024, bandwidth_kbps=6.0,
        config=dict(audio_channels=2, sampling_rate=48000, codebook_size=1024,
                    target_bandwidths=[3.0, 6.0, 12.0, 24.0], use_causal_conv=False, normalize=True,
                    norm_type='time_group_norm', chunk_length_s=1.0, overlap=0.01),
        encodec_package_model='encodec_model_48khz'),
}


@dataclass(frozen=True)
class CodecSettings:
    """Everything that decides which codec encodes and how; picklable."""
    name: str = 'encodec_32khz'
    weights: str = 'pretrained'          # 'pretrained' | 'random'
    seed: int = 0
    path: str = None                     # local directory with a checkpoint
    backend: str = 'transformers'        # 'transformers' | 'encodec'
    device: str = 'auto'
    runtime: str = 'auto'                # 'auto' | a name in codec_runtime.RUNTIMES
    threads: int = 1                     # intra-op threads of the runtime, per worker process
    precision: str = 'fp32'              # 'fp32' | 'bf16' | 'fp16' (autocast)

    def __post_init__(self):
        if self.name not in CODECS:
            raise ValueError(f'--codec={self.name!r}: choose one of {sorted(CODECS)}')
        if self.weights not in ('pretrained', 'random'):
            raise ValueError(f"--codec-weights={self.weights!r}: choose 'pretrained' or 'random'")
        if self.backend not in BACKENDS:
            raise ValueError(f'--codec-backend={self.backend!r}: choose one of {sorted(BACKENDS)}')
        if self.backend == 'encodec' and not self.spec.encodec_package_model:
            raise ValueError(f'--codec-backend=encodec serves encodec_24khz and encodec_48khz, not {self.name}')
        if self.device not in ('auto', 'cpu', 'cuda') and not self.device.startswith('cuda:'):
            raise ValueError(f"--device={self.device!r}: choose auto, cpu or cuda")
        if self.runtime not in RUNTIME_NAMES:
            raise ValueError(f'--codec-runtime={self.runtime!r}: choose one of {list(RUNTIME_NAMES)}')
        if self.threads < 1:
            raise ValueError(f'--codec-threads={self.threads}: at least 1')
        if self.precision not in PRECISIONS:
            raise ValueError(f'--codec-precision={self.precision!r}: choose one of {sorted(PRECISIONS)}')

    @property
    def spec(self) -> CodecSpec:
        return CODECS[self.name]

    @property
    def weights_id(self) -> str:
        """What made the tokens, as the manifest records it."""
        if self.weights == 'random':
            return f'random:{self.seed}'
        return f'pretrained:{self.path or self.spec.hf_id}'

    def replace(self, **changes) -> 'CodecSettings':
        return dataclasses.replace(self, **changes)


RUNTIME_NAMES = ('auto', 'torch', 'onnxruntime', 'openvino')   # codec_runtime.RUNTIMES, and auto
PRECISIONS = {'fp32': None, 'bf16': 'bfloat16', 'fp16': 'float16'}


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError('the codec needs PyTorch: pip install torch') from e
    return torch


# Device files of a GPU driver (NVIDIA, AMD ROCm, WSL's GPU bridge): without any, PyTorch sees no GPU.
GPU_DEVICE_FILES = ('/dev/nvidiactl', '/dev/nvidia0', '/proc/driver/nvidia/version', '/dev/kfd', '/dev/dxg')


def quick_device(device: str) -> Optional[str]:
    """'cpu' for ``--device=cpu``, and for auto on a machine with no GPU driver, told without
    importing PyTorch; None when only PyTorch can tell."""
    if device == 'cpu':
        return 'cpu'
    if device != 'auto' or os.name != 'posix':
        return None
    return None if any(os.path.exists(p) for p in GPU_DEVICE_FILES) else 'cpu'


def resolve_device(device: str) -> str:
    torch = _torch()
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device={device}: no CUDA device is available')
    return device


class TransformersEncodec:
    """EnCodec through ``transformers.EncodecModel``."""

    def __init__(self, settings: CodecSettings):
        torch = _torch()
        from transformers import EncodecConfig, EncodecModel
        self.settings = settings
        self.spec = settings.spec
        if settings.weights == 'random':
            from transforms.codec_calibration import random_state_dict
            model = EncodecModel(EncodecConfig(**self.spec.config))
            model.load_state_dict(random_state_dict(settings, lambda: EncodecModel(EncodecConfig(**self.spec.config))))
        else:
            source = settings.path or self.spec.hf_id
            model = EncodecModel.from_pretrained(source)
            if model.config.sampling_rate != self.spec.sample_rate_hz:
                raise ValueError(f'{source}: a {model.config.sampling_rate} Hz checkpoint, '
                                 f'but --codec={self.spec.name} is {self.spec.sample_rate_hz} Hz')
        # Windows are cut by the pipeline (with margins): encode each as one piece.
        model.config.chunk_length_s = None
        model.config.overlap = None
        self.device = resolve_device(settings.device)
        self.model = model.eval().to(self.device)
        self.torch = torch
        self.normalizes = bool(model.config.normalize)

    def autocast(self):
        """The precision context of a forward pass: autocast for bf16/fp16, nothing for fp32."""
        dtype = PRECISIONS[self.settings.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(device_type=self.device.split(':')[0], dtype=getattr(self.torch, dtype))

    def encode(self, batch: np.ndarray, lengths=None):
        """``[batch, channels, samples]`` float32 -> (codes int64 ``[batch, codebooks, frames]``,
        scales ``[batch]`` or None). ``lengths``: each item's real length when the batch is padded."""
        torch = self.torch
        with torch.inference_mode(), self.autocast():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            mask = None
            if lengths is not None:
                mask = (torch.arange(x.shape[-1], device=self.device)[None, :] <
                        torch.as_tensor(lengths, device=self.device)[:, None])
                mask = mask[:, None, :].expand(-1, x.shape[1], -1)
            out = self.model.encode(x, padding_mask=mask, bandwidth=self.spec.bandwidth_kbps)
            codes = out.audio_codes[0].cpu().numpy()
            scale = out.audio_scales[0]
            scales = None if scale is None else scale.reshape(-1).float().cpu().numpy()
        return codes, scales

    def decode(self, codes: np.ndarray, scales=None) -> np.ndarray:
        """``[batch, codebooks, frames]`` -> audio ``[batch, channels, samples]``."""
        torch = self.torch
        with torch.inference_mode():
            c = torch.from_numpy(codes.astype(np.int64))[None].to(self.device)
            s = [None] if scales is None else [torch.tensor(scales, dtype=torch.float32).reshape(-1, 1).to(self.device)]
            audio = self.model.decode(c, s).audio_values
        return audio.float().cpu().numpy()



class EncodecPackageCodec(TransformersEncodec):
    """EnCodec through Meta's ``encodec`` package (24 and 48 kHz models)."""

    def __init__(self, settings: CodecSettings):
        torch = _torch()
        try:
            import encodec
        except (ImportError, OSError) as e:
            raise ImportError('--codec-backend=encodec needs the encodec package and a torchaudio that '
                              f'loads beside this torch: pip install encodec ({e})') from e
        self.settings, self.spec, self.torch = settings, settings.spec, torch
        make = getattr(encodec.EncodecModel, self.spec.encodec_package_model)
        if settings.weights == 'random':
            from transforms.codec_calibration import random_state_dict
            model = make(pretrained=False)
            model.load_state_dict(random_state_dict(settings, lambda: make(pretrained=False)))
        elif settings.path:
            model = make(pretrained=False)
            model.load_state_dict(torch.load(settings.path, map_location='cpu', weights_only=True))
        else:
            model = make(pretrained=True)
        model.set_target_bandwidth(self.spec.bandwidth_kbps)
        model.segment = None   # windows are cut by the pipeline
        self.device = resolve_device(settings.device)
        self.model = model.eval().to(self.device)
        self.normalizes = bool(model.normalize)

    def encode(self, batch: np.ndarray, lengths=None):
        torch = self.torch
        with torch.inference_mode(), self.autocast():   # padded items are zero past their length
            frames = self.model.encode(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
            codes, scale = frames[0]
            scales = None if scale is None else scale.reshape(-1).float().cpu().numpy()
        return codes.cpu().numpy(), scales

    def decode(self, codes: np.ndarray, scales=None) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            c = torch.from_numpy(codes.astype(np.int64))[None].to(self.device)
            s = None if scales is None else torch.tensor(scales, dtype=torch.float32).reshape(-1, 1).to(self.device)
            return self.model.decode([(c, s)]).float().cpu().numpy()



BACKENDS = {'transformers': TransformersEncodec, 'encodec': EncodecPackageCodec}


def load_codec(settings: CodecSettings):
    """Builds the codec named by ``settings`` (call once per worker, in ``DoFn.setup``)."""
    if settings.threads:
        _torch().set_num_threads(settings.threads)
    if settings.weights == 'random':
        LOG.warning('CODEC WEIGHTS ARE RANDOM (%s, seed %d): tokens are for testing the pipeline, '
                    'not for training a model.', settings.name, settings.seed)
    return BACKENDS[settings.backend](settings)

