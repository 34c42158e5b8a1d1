"""What a variant must meet against the PyTorch original, and how sure a measured agreement is.

Light on purpose (no numpy, no torch): the variant registry and the CLI's help import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_VALIDATION_SIZES", "Gate", "wilson_lower_bound"]

# Validation texts per task when the caller does not say. Sequence classifiers: 2,000 texts, so one flip is 0.05 pt
# and a 99.9 % agreement has a lower 95 % bound near 99.6 % (256 texts could not tell 99.9 % from 98.6 %).
# NER: 1,000 KLUE-NER sentences are ~27,000 token decisions and ~2,300 entities — the gate's units — so its bounds
# are tighter than 2,000 texts give a classifier, and it leaves KLUE-NER dev sentences 4000-4999 (held out from the
# trained 004 stand-in) well represented by the even spread.
DEFAULT_VALIDATION_SIZES = {"text-classification": 2000, "token-classification": 1000}


@dataclass(frozen=True)
class Gate:
    """Thresholds a variant must meet; None = reported, not enforced."""

    atol: float | None = None
    min_label_agreement: float | None = None
    min_entity_agreement: float | None = None


def wilson_lower_bound(successes: int, trials: int, z: float = 1.959964) -> float:
    """Lower end of the Wilson score interval (95 % two-sided by default) of the proportion successes / trials.

    Unlike the normal approximation it stays inside [0, 1] and is meaningful at 100 %: 2,000 agreements out of 2,000
    give 0.99808, i.e. the data support "at least 99.8 %", not "100 %".
    """
    if trials <= 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / denominator)
