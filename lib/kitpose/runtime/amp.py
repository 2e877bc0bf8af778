"""Mixed precision: which autocast a TRAIN.AMP / TEST.AMP setting means on a device."""
import contextlib

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
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return f"{key} bf16 on a CPU without native bfloat16 instructions: expect it slower than float32"
    return f"{key} {amp}: {device.type} autocast"
