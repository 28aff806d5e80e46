"""Share a row budget across groups of known sizes (water-filling): the arithmetic under sampling.

:func:`waterfill` is the one place that turns group sizes and a budget into per-group
quotas; :mod:`~textcluster.describe.sampling` (samples, the scatter subset) and
:mod:`~textcluster.describe.clusters` (the keyword subset) both import it from here, so
the two modules do not import each other.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from textcluster.errors import ConfigError

#: How a budget is shared: the same count per group, in proportion to size, or to its square root.
ALLOCATIONS = ("equal", "proportional", "sqrt")


def _weights(sizes: list[int], allocation: str) -> np.ndarray:
    s = np.asarray(sizes, dtype=np.float64)
    if allocation == "equal":
        return (s > 0).astype(np.float64)
    if allocation == "proportional":
        return s
    if allocation == "sqrt":
        return np.sqrt(s)
    raise ConfigError(f"allocation={allocation!r} should be one of {', '.join(ALLOCATIONS)}")


def waterfill(sizes: Mapping[Hashable, int], budget: int, allocation: str = "sqrt") -> dict[Any, int]:
    """Share ``budget`` rows across groups of the given sizes.

    Groups whose weighted share exceeds their size give all their rows and the
    rest is shared again among the others (water-filling); the final
    fractional shares are rounded by the largest-remainder method (ties go to
    the group listed first). The result sums to ``min(budget, sum(sizes))``
    and never exceeds a group's size. Keys keep the order of ``sizes``.
    ``allocation`` is one of :data:`ALLOCATIONS`.
    """
    if budget < 0:
        raise ConfigError(f"budget={budget} should be >= 0")
    keys = list(sizes)
    size = [int(sizes[k]) for k in keys]
    if any(s < 0 for s in size):
        raise ConfigError(f"group sizes should be >= 0, got {dict(zip(keys, size, strict=True))}")
    w = _weights(size, allocation)
    out = np.zeros(len(keys), dtype=np.int64)
    active = np.array([s > 0 and wi > 0 for s, wi in zip(size, w, strict=True)], dtype=bool)
    cap = np.asarray(size, dtype=np.int64)
    left = min(budget, int(cap.sum()))
    while left > 0 and active.any():
        share = np.zeros(len(keys))
        share[active] = left * w[active] / w[active].sum()
        full = active & (share >= cap)
        if not full.any():
            base = np.floor(share).astype(np.int64)
            base[~active] = 0
            rest = left - int(base[active].sum())
            rem = np.where(active, share - base, -1.0)
            # stable sort: equal remainders go to the group listed first
            order = np.argsort(-rem, kind="stable")[:rest]
            base[order] += 1
            out[active] += base[active]
            left = 0
            break
        out[full] = cap[full]
        left -= int(cap[full].sum())
        active &= ~full
    return {k: int(v) for k, v in zip(keys, out, strict=True)}
