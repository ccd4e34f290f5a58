"""What a measurement ran on: CPU, cores, system, Python and LiteRT versions, load.

Benchmarks and `fer-edge convert --verify` put this beside every figure they report, so a
number can be told apart from one measured elsewhere (or on a busy machine).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def package_version(dist: str) -> str | None:
    """The installed version of a distribution (`ai-edge-litert`), None when not installed."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (`avx2`, `amx_bf16`, ...); empty elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_fast_bfloat16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def machine_info() -> dict:
    """The CPU, cores, machine, system, Python, LiteRT version and the 1-minute load now."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "machine": platform.machine(),
            "system": platform.system(), "python": platform.python_version(),
            "litert": package_version("ai-edge-litert") or "unknown",
            "loadavg_1m_at_start": round(float(load[0]), 2)}
