"""What this machine's CPU does natively, read once, so precision is chosen from the CPU and never assumed.

bfloat16 halves the embedder's memory traffic and is about 3x faster than float32 on a CPU that computes it
natively (x86 AVX512_BF16 or AMX, Arm's BF16 extension); elsewhere (AVX2-only servers) it is emulated and about
6x slower than float32. ``embedder_precision("auto")`` picks accordingly.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# /proc/cpuinfo flags (x86 "flags", Arm "Features") that mean native bfloat16 arithmetic.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
PRECISIONS = ("auto", "bfloat16", "float32")


@dataclass(frozen=True)
class Precision:
    """The dtype the embedder runs in, and why (for ``guichet models list`` and the start-up log)."""

    dtype: str  # "bfloat16" or "float32"
    reason: str


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where the OS does not publish them).

    >>> sorted(cpu_flags(Path("/nonexistent")))
    []
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


@cache
def native_bfloat16() -> bool:
    """True if the CPU computes bfloat16 natively (checked once per process)."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True  # Apple M2 and later; M1 lacks it but runs it acceptably through Accelerate
    return bool(cpu_flags() & BF16_FLAGS)


def embedder_precision(setting: str, native_bf16: bool | None = None) -> Precision:
    """The embedder's dtype for a ``GUICHET_EMBEDDER_DTYPE`` setting (``auto``, ``bfloat16`` or ``float32``).

    >>> embedder_precision("auto", native_bf16=False).dtype
    'float32'
    >>> embedder_precision("auto", native_bf16=True).dtype
    'bfloat16'
    >>> embedder_precision("bfloat16", native_bf16=False).reason
    'set by GUICHET_EMBEDDER_DTYPE (this CPU has no native bfloat16: expect it to be several times slower)'
    """
    native = native_bfloat16() if native_bf16 is None else native_bf16
    if setting == "auto":
        if native:
            return Precision("bfloat16", "auto: the CPU computes bfloat16 natively")
        return Precision("float32", "auto: the CPU has no native bfloat16 (emulated bfloat16 is ~6x slower)")
    if setting == "bfloat16" and not native:
        return Precision(
            "bfloat16",
            "set by GUICHET_EMBEDDER_DTYPE (this CPU has no native bfloat16: expect it to be several times slower)",
        )
    return Precision(setting, "set by GUICHET_EMBEDDER_DTYPE")
