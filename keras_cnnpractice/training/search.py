"""Random hyperparameter search in log space, coarse to fine.

Learning rates and regularization strengths act multiplicatively, so they
are sampled uniformly in their logarithm (`10 ** uniform(-5, -2)`, not
`uniform(1e-5, 1e-2)`, which puts 90% of its samples in the top decade).
Random search beats grid search when only a few hyperparameters matter
(Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
JMLR 2012). A coarse stage over wide ranges is followed by a fine stage
over ranges narrowed around the best trials; a best value near the edge of
its range says the range should be widened (CS231n, "Hyperparameter
optimization").
"""

import dataclasses
import math
from typing import Dict
from typing import Tuple

import numpy as np


def _check_bounds(low, high, name="range"):
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"The bounds of {name} must be finite. Received: "
                         f"low={low}, high={high}")
    if low <= 0:
        raise ValueError(f"The bounds of {name} must be > 0 to sample in log "
                         f"space. Received: low={low}")
    if low >= high:
        raise ValueError(f"The low bound of {name} must be below the high "
                         f"bound. Received: low={low}, high={high}")


def log_uniform(rng, low, high, size=None):
    """Samples `exp(uniform(ln low, ln high))`: uniform in log space.

    Args:
        rng: a `numpy.random.Generator`.
        low, high: the range, `0 < low < high`.
        size: numpy's output shape (None: one float).

    Returns:
        A float, or an array of `size`.

    Raises:
        ValueError: `low <= 0`, `low >= high` or a bound that is not finite.
    """
    _check_bounds(low, high)
    values = np.exp(rng.uniform(math.log(low), math.log(high), size))
    # exp(log(x)) can step a hair outside [low, high].
    values = np.clip(values, low, high)
    return float(values) if size is None else values


def parse_range(text, name="range"):
    """Parses "LOW:HIGH" (e.g. "1e-5:1e-2") into `(low, high)` floats.

    Raises:
        ValueError: not two numbers around one colon, `low <= 0`, or
            `low >= high`.
    """
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError(f"{name} must be LOW:HIGH, e.g. 1e-5:1e-2. Received: "
                         f"{name}={text!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{name} must be LOW:HIGH with two numbers, e.g. "
                         f"1e-5:1e-2. Received: {name}={text!r}") from None
    _check_bounds(low, high, name)
    return low, high


def format_range(bounds):
    """`(low, high)` as "LOW:HIGH", the form `parse_range` reads."""
    return f"{bounds[0]:.3g}:{bounds[1]:.3g}"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Named log-uniform ranges, e.g. `{"learning_rate": (1e-5, 1e-2)}`.

    Raises:
        ValueError: no ranges, or a range that `log_uniform` rejects.
    """

    ranges: Dict[str, Tuple[float, float]]

    def __post_init__(self):
        if not self.ranges:
            raise ValueError("A SearchSpace needs at least one range. "
                             "Received: ranges={}")
        for name, (low, high) in self.ranges.items():
            _check_bounds(low, high, name)

    @classmethod
    def parse(cls, texts):
        """A space from `{name: "LOW:HIGH"}`."""
        return cls({name: parse_range(text, name)
                    for name, text in texts.items()})

    def sample(self, rng, count):
        """`count` independent draws: a list of `{name: value}`.

        Each name gets its `count` values in one call, in the order of
        `ranges`, so a seed gives the same trials every time.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0. Received: count={count}")
        columns = {name: log_uniform(rng, low, high, count)
                   for name, (low, high) in self.ranges.items()}
        return [{name: float(values[i]) for name, values in columns.items()}
                for i in range(count)]


def _best(trials, score, top_k):
    """The `top_k` trials with the highest finite `score`, best first."""
    valid = [t for t in trials
             if isinstance(t.get(score), (int, float))
             and math.isfinite(t[score])]
    return sorted(valid, key=lambda t: t[score], reverse=True)[:top_k]


def coarse_to_fine(space, trials, top_k=3, margin=0.1, score="val_accuracy"):
    """Ranges narrowed around the best trials, for the next (finer) stage.

    For each name, the new range spans the log-space minimum to maximum of
    the `top_k` best trials' values, widened on each side by `margin` times
    the width (in log space) of the range in `space`, and clipped to that
    range. A single best trial (or several with one value) thus gets a
    range `2 * margin` as wide as the original, around its value.

    Args:
        space: the `SearchSpace` the trials were drawn from.
        trials: dicts holding a value for each name of `space` and `score`;
            trials whose score is missing or not finite (a failed or NaN
            run) are left out.
        top_k: how many of the best trials the new ranges must contain.
        margin: the widening, as a fraction of the original log width; > 0.
        score: the key to maximize.

    Returns:
        A new `SearchSpace`, inside `space` and containing the values of the
        `top_k` best trials; `space` itself when no trial has a score.

    Raises:
        ValueError: `top_k < 1` or `margin <= 0`.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1. Received: top_k={top_k}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0. Received: margin={margin}")
    best = _best(trials, score, top_k)
    if not best:
        return space
    ranges = {}
    for name, (low, high) in space.ranges.items():
        log_low, log_high = math.log(low), math.log(high)
        pad = margin * (log_high - log_low)
        logs = [math.log(t[name]) for t in best]
        new_low = max(log_low, min(logs) - pad)
        new_high = min(log_high, max(logs) + pad)
        # Clipped again after exp(log(x)) rounding, and keeping the trials'
        # own values inside.
        values = [t[name] for t in best]
        ranges[name] = (min(max(low, math.exp(new_low)), *values),
                        max(min(high, math.exp(new_high)), *values))
    return SearchSpace(ranges)


def edge_warnings(best, space, fraction=0.1):
    """Warnings for best values in the outer `fraction` of their range.

    Positions are measured in log space: a learning rate range 1e-5:1e-2
    has its outer 10% below 2e-5 and above 5e-3. The best value there means
    a better one may lie outside the range.

    Args:
        best: `{name: value}` of the best trial (other keys are ignored).
        space: the `SearchSpace` (the original, coarse one).
        fraction: the width of each edge zone, in (0, 0.5).

    Returns:
        One message per name whose best value lies in an edge zone.
    """
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction must be in (0, 0.5). Received: "
                         f"fraction={fraction}")
    warnings = []
    for name, (low, high) in space.ranges.items():
        if name not in best:
            continue
        value = best[name]
        position = (math.log(value) - math.log(low)) / (
            math.log(high) - math.log(low))
        if position <= fraction:
            side, direction = "bottom", "lower"
        elif position >= 1 - fraction:
            side, direction = "top", "higher"
        else:
            continue
        warnings.append(
            f"the best {name}={value:.3g} lies in the {side} {fraction:.0%} "
            f"(log scale) of its range {format_range((low, high))}: a better "
            f"value may be {direction}; widen the range and search again")
    return warnings
