"""Device names → onnxruntime execution providers. Never falls back silently."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kolite.errors import ProviderUnavailableError, UnknownVariantError

__all__ = [
    "CUDA_PROVIDER_OPTIONS",
    "DEVICES",
    "DeviceSpec",
    "available_providers",
    "check_session_providers",
    "cpu_device",
    "resolve_device",
]

logger = logging.getLogger("kolite")

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"


@dataclass(frozen=True)
class DeviceSpec:
    """A resolved device: the EP chain handed to onnxruntime and its options."""

    kind: str  # "cpu" | "cuda"
    providers: tuple[str, ...]
    provider_options: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    device_id: int = 0

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"


def _cpu(device_id: int) -> DeviceSpec:
    return DeviceSpec("cpu", (CPU_EP,), ({},), 0)


def cpu_device() -> DeviceSpec:
    """The CPU execution provider (what a session falls back to when CUDA cannot start)."""
    return _cpu(0)


# CUDA execution provider options (onnxruntime's names; values as strings, as the C API takes them):
# - use_tf32 "0": fp32 graphs compute in real fp32. TF32 tensor cores round inputs to 10 mantissa bits, which
#   would make the fp32 variant no closer to PyTorch's fp32 than fp16 is (onnxruntime's default is TF32 on).
# The arena keeps onnxruntime's default growth (next power of two): on an H200 a session with exact-size growth
# and no memory patterns ran sorted batches of 256 at 0.65x (000) and 0.51x (004) the texts/s of a plain session
# with onnxruntime's defaults, same run (benchmarks/results/gpu-20261204T170417Z*.json).
# - do_copy_in_default_stream "1": input copies and kernels share one stream, so a bound input is complete when
#   the first kernel reads it (no extra synchronisation per call).
# - cudnn_conv_algo_search HEURISTIC: transformer graphs have no convolutions; no exhaustive search at start.
CUDA_PROVIDER_OPTIONS = {
    "use_tf32": "0",
    "do_copy_in_default_stream": "1",
    "cudnn_conv_algo_search": "HEURISTIC",
}


def _cuda(device_id: int) -> DeviceSpec:
    # CPU stays in the chain only for the few nodes CUDA EP has no kernel for (ORT places them per node).
    return DeviceSpec("cuda", (CUDA_EP, CPU_EP), ({"device_id": str(device_id), **CUDA_PROVIDER_OPTIONS}, {}),
                      device_id)


# Registry: device kind → (required provider, builder). Add e.g. "rocm" here.
DEVICE_REGISTRY = {"cpu": (CPU_EP, _cpu), "cuda": (CUDA_EP, _cuda)}
DEVICES = (*DEVICE_REGISTRY, "auto")


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def _parse(device: str) -> tuple[str, int]:
    kind, _, index = str(device).strip().lower().partition(":")
    if kind not in DEVICES or (index and (not index.isdigit() or kind != "cuda")):
        raise UnknownVariantError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)} (or cuda:N)")
    return kind, int(index or 0)


def resolve_device(device: str, available: Sequence[str] | None = None) -> DeviceSpec:
    """``cpu`` | ``cuda`` | ``cuda:N`` | ``auto`` → DeviceSpec.

    ``cuda`` without CUDAExecutionProvider raises ProviderUnavailableError; ``auto`` warns loudly and uses CPU.
    """
    kind, device_id = _parse(device)
    available = list(available) if available is not None else available_providers()
    if kind == "auto":
        if CUDA_EP in available:
            return _cuda(device_id)
        message = (
            f"kolite: device='auto' found no CUDAExecutionProvider (available: {available}); running on CPU. "
            "Install `kolite[gpu]` (onnxruntime-gpu) for CUDA, or pass device='cpu' to silence this warning"
        )
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return _cpu(0)
    required, build = DEVICE_REGISTRY[kind]
    if required not in available:
        raise ProviderUnavailableError(
            f"device={device!r} needs {required}, but this onnxruntime build only has {available}. "
            "Fix: `pip uninstall -y onnxruntime && pip install 'kolite[gpu]'` (onnxruntime-gpu, with CUDA and "
            "cuDNN libraries matching it), or use device='cpu'"
        )
    return build(device_id)


def check_session_providers(spec: DeviceSpec, session_providers: Sequence[str], strict: bool) -> DeviceSpec:
    """onnxruntime drops an EP it cannot initialise (missing libcudnn...) with only a log line: catch that."""
    required = spec.providers[0]
    if required in session_providers:
        return spec
    message = (
        f"onnxruntime could not initialise {required} (session providers: {list(session_providers)}); "
        "check that the CUDA/cuDNN libraries match onnxruntime-gpu"
    )
    if strict:
        raise ProviderUnavailableError(message)
    logger.warning("kolite: %s; running on CPU", message)
    warnings.warn(f"kolite: {message}; running on CPU", RuntimeWarning, stacklevel=3)
    return _cpu(0)
