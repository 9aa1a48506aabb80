"""The instruction sets of the CPU the server runs on, read once at start-up.

Why: the fastest accurate CPU path depends on the matrix units the CPU has (AMX tiles, AVX-512 BF16, VNNI),
and the machines a deployment runs on differ. ``runtime.precision: auto`` picks the path from these flags
(``backend.choose_cpu_path``); ``Info.cpu_features``, the logs and ``sesa status`` show what was found.

``SESA_CPU_FLAGS`` (a comma-separated flag list, e.g. ``avx2`` or ``none``) replaces what the CPU reports: it
forces a fallback on a machine that has more (tests use it; an operator may use it to rule out a unit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

# The flags that decide a CPU path, in the order they are reported (fastest units first).
RELEVANT = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "fma")

OVERRIDE_ENV = "SESA_CPU_FLAGS"


@dataclass(frozen=True)
class CpuFeatures:
    flags: frozenset[str]
    source: str  # "/proc/cpuinfo", "SESA_CPU_FLAGS" or "unknown"

    @property
    def amx_bf16(self) -> bool:
        return "amx_bf16" in self.flags and "amx_tile" in self.flags

    @property
    def amx_int8(self) -> bool:
        return "amx_int8" in self.flags and "amx_tile" in self.flags

    @property
    def avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def bf16_units(self) -> bool:
        """bf16 dot products in hardware (AMX tiles or AVX-512 BF16): bf16 runs at about twice fp32."""
        return self.amx_bf16 or self.avx512_bf16

    @property
    def vnni(self) -> bool:
        """int8 dot products in one instruction (AVX-512 VNNI or AVX-VNNI)."""
        return "avx512_vnni" in self.flags or "avx_vnni" in self.flags or self.amx_int8

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @cached_property
    def found(self) -> list[str]:
        """The relevant flags present, fastest units first (what Info and `sesa status` show)."""
        return [f for f in RELEVANT if f in self.flags]

    def describe(self) -> str:
        return ", ".join(self.found) or "none of " + "/".join(RELEVANT[:7])


def parse_cpuinfo(text: str) -> frozenset[str]:
    """The flags of the first processor in /proc/cpuinfo text (all cores of a machine report the same)."""
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def detect(cpuinfo_path: str = "/proc/cpuinfo") -> CpuFeatures:
    override = os.environ.get(OVERRIDE_ENV)
    if override is not None:
        flags = {f.strip().lower() for f in override.replace(" ", ",").split(",")}
        return CpuFeatures(frozenset(f for f in flags if f and f != "none"), OVERRIDE_ENV)
    try:
        with open(cpuinfo_path, encoding="utf-8") as f:
            return CpuFeatures(parse_cpuinfo(f.read()), cpuinfo_path)
    except OSError:
        return CpuFeatures(frozenset(), "unknown")
