"""Mixed precision: which autocast a TRAIN.AMP / TEST.AMP setting means on a device."""
import contextlib
import platform
from pathlib import Path

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(amp, device, key):
    """Autocast for amp 'bf16' (CUDA or CPU) or 'fp16' (CUDA); 'none', or 'fp16' on the CPU, -> none.
    ``key`` names the setting in the error for an unknown mode."""
    amp = amp.lower()
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"{key}: unknown mixed-precision mode {amp!r} (none, bf16 or fp16)")
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=AMP_DTYPES[amp])
    if device.type == "cpu" and amp == "bf16":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_amp(amp, device, key):
    """One log line saying what `amp` does on `device` (logged once per run by the tools)."""
    amp = amp.lower()
    if amp == "none":
        return None
    if device.type == "cpu" and amp == "fp16":
        return f"{key} fp16 needs CUDA: float32 on the CPU (bf16 works on CPUs)"
    if device.type == "cpu" and not cpu_has_native_bf16():
        return f"{key} bf16 on a CPU without native bfloat16 instructions: expect it slower than float32"
    return f"{key} {amp}: {device.type} autocast"


def cpu_has_native_bf16():
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX-512 BF16 or AMX); without it, bf16
    autocast on the CPU is emulated and slower than float32."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_model():
    """The CPU's model name as lscpu shows it (Linux /proc/cpuinfo), else what the platform module
    knows: the CPU kind decides the CPU speed figures and whether bfloat16 runs natively."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def training_amp(amp, device):
    """The autocast TRAIN.AMP gives on `device`: as set on CUDA; on the CPU 'bf16' only where the CPU
    has native bfloat16 (else float32), never 'fp16'."""
    amp = amp.lower()
    if device.type == "cuda" or amp == "none":
        return amp
    return "bf16" if amp == "bf16" and cpu_has_native_bf16() else "none"


def describe_training_amp(amp, device):
    """The log line saying which training precision runs (None for plain float32 as configured)."""
    effective = training_amp(amp, device)
    if amp.lower() == "none":
        return None
    if effective == "none":
        reason = ("fp16 needs CUDA" if amp.lower() == "fp16" else
                  "this CPU has no native bfloat16 instructions (AVX-512 BF16 / AMX)")
        return f"TRAIN.AMP {amp}: {reason}; training in float32"
    return f"TRAIN.AMP {effective}: {device.type} autocast (float32 weights, optimiser and losses)"
