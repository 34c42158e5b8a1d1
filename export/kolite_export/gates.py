"""What a variant must meet against the PyTorch original, and how sure a measured agreement is.

Light on purpose (no numpy, no torch): the variant registry and the CLI's help import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_VALIDATION_SIZES", "Gate", "wilson_lower_bound"]

# Validation texts per task when the caller does not say. Sequence classifiers: 2,000 texts, so one flip is 0.05 pt
# and 99.9 % agreement (2 flips) has a lower 95 % bound of 99.64 %; the old 256 could not show even 99 % (256 of 256
# agreeing: lower bound 98.52 %). NER: 1,000 KLUE-NER sentences, because the gate's units are tokens and entities —
# ~27,300 token decisions and ~2,900 gold entities — already more than 2,000 short texts give a classifier.
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
