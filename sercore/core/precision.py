"""Numeric precision of training and extraction: ``"auto"`` (the default), ``"fp32"`` or ``"bf16"`` (bfloat16
autocast).

``resolve_precision(precision, device)`` says which precision a run actually uses and why. ``"auto"`` is bf16
where the device has fast bfloat16 kernels and fp32 elsewhere; ``"bf16"`` asked for explicitly runs only where
the device has fast bfloat16 kernels (CUDA: ``torch.cuda.is_bf16_supported()``; CPU: oneDNN's bf16 support,
i.e. AVX-512 or AMX); elsewhere it falls back to fp32 and the note says so. On a CPU without them, bf16 autocast
still computes the same numbers through slow emulation (several times slower than fp32); setting the
environment variable ``SERCORE_BF16_EMULATED=1`` runs it anyway (for A/B measurements of the numbers, never for
speed). ``SERCORE_AUTO_PRECISION=fp32`` makes ``"auto"`` resolve to fp32 on every device (runs whose numbers must
match fp32 references, such as the test suite's golden values, on a machine that has bf16).
``autocast(used, device)`` is the context to run forward passes in.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

PRECISIONS = ("auto", "fp32", "bf16")
EMULATE_ENV = "SERCORE_BF16_EMULATED"
AUTO_ENV = "SERCORE_AUTO_PRECISION"  # "fp32": auto always resolves to fp32


def check_precision(precision: str, where: str = "precision") -> str:
    """``precision`` if it is one of ``PRECISIONS``, else a ``ValueError`` naming ``where``."""
    if precision not in PRECISIONS:
        raise ValueError(f"{where} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@functools.lru_cache(maxsize=None)
def bf16_support(device_type: str) -> tuple[bool, str]:
    """``(fast, reason)``: whether ``device_type`` (``cpu``/``cuda``) has fast bfloat16 kernels, and why (not)."""
    if device_type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA bf16 supported" if ok else "this GPU has no bf16 support"
    if device_type != "cpu":
        return False, f"bf16 autocast is not used on device type {device_type!r}"
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ran = (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    except RuntimeError as err:
        return False, f"CPU bf16 autocast failed ({err})"
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    capability = torch.backends.cpu.get_cpu_capability()
    if ran and native:
        return True, f"CPU with oneDNN bf16 kernels ({capability})"
    return False, (f"this CPU ({capability}) has no fast bf16 kernels (oneDNN bf16 unsupported; bf16 autocast "
                   "would be emulated, several times slower than fp32)")


def resolve_precision(precision: str, device) -> tuple[str, str]:
    """``(used, note)``: the precision a run on ``device`` uses for the requested ``precision``, and why."""
    check_precision(precision)
    if precision == "fp32":
        return "fp32", ""
    device_type = torch.device(device).type
    pinned = os.environ.get(AUTO_ENV, "")
    if pinned not in ("", "fp32"):
        raise ValueError(f"{AUTO_ENV} may only be 'fp32' (or unset), got {pinned!r}")
    if precision == "auto" and pinned == "fp32":
        return "fp32", f"auto: fp32, pinned by {AUTO_ENV}=fp32"
    fast, reason = bf16_support(device_type)
    if precision == "auto":
        return ("bf16", f"auto: bf16, {reason}") if fast else ("fp32", f"auto: fp32, {reason}")
    if fast:
        return "bf16", reason
    if device_type == "cpu" and os.environ.get(EMULATE_ENV, "") not in ("", "0"):
        return "bf16", f"{reason}; run anyway ({EMULATE_ENV}=1)"
    return "fp32", f"bf16 requested, ran in fp32: {reason}"


def autocast(used: str, device):
    """The autocast context for forward passes in precision ``used`` on ``device`` (a no-op for fp32); ``used`` is
    what :func:`resolve_precision` returned, never ``"auto"``."""
    if used not in ("fp32", "bf16"):
        raise ValueError(f"autocast takes the precision a run uses, fp32 or bf16 (resolve_precision first), "
                         f"got {used!r}")
    if used == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
