"""Memory profiles: what a served model holds in memory beyond its graph, and how to give it up on a small box.

Measured for 000 (KoELECTRA-small, int8-static, 27 MB graph) on x86-64 (docs/guides/containers.md has the table):
imports of the server ~63 MB; the session ~80 MB; each extra throughput-mode session another ~80 MB (one per thread
beyond the first); onnxruntime's CPU arena keeps its high-water mark (a full-length warm-up batch: ~50 MB, a burst
of long texts: hundreds of MB) for the life of the process.

``default`` is tuned for speed on a dedicated machine. ``edge`` gives up the throughput-mode sessions and the arena
(freed tensors go back to the C allocator; with ``MALLOC_MMAP_THRESHOLD_`` fixed, as the image sets it, back to the
system) and warms up with one short text only: RSS for 000 stays ~140 MB, and batch-1 latency is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kolite.errors import KoliteError

__all__ = ["MEMORY_PROFILES", "MemoryProfile", "memory_profile"]


@dataclass(frozen=True)
class MemoryProfile:
    name: str
    # onnxruntime SessionOptions attributes (kolite.session.build_session_options' mapping form)
    session_options: Mapping[str, Any] = field(default_factory=dict)
    # throughput-mode sessions (kolite.load's ``parallel``): None = one per thread, 1 = off
    parallel: int | None = None
    # warm up with a full-length batch too (sizes the arena once), not just a short text
    full_warmup: bool = True

    def merged_options(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` (the caller's session options mapping) with this profile's entries on top."""
        return {**base, **self.session_options}


MEMORY_PROFILES: dict[str, MemoryProfile] = {
    "default": MemoryProfile("default"),
    "edge": MemoryProfile("edge", session_options={"enable_cpu_mem_arena": False}, parallel=1, full_warmup=False),
}


def memory_profile(name: str) -> MemoryProfile:
    """The profile called ``name``; KoliteError naming the valid ones otherwise."""
    try:
        return MEMORY_PROFILES[name]
    except (KeyError, TypeError):
        raise KoliteError(f"unknown memory profile {name!r}; valid: {', '.join(MEMORY_PROFILES)}") from None
