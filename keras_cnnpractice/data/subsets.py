"""Class subsets and few-example training sets (transfer experiments)."""

import numpy as np


def parse_classes(text):
    """`"5,6,7"` or `"5-9"` -> a list of class indices; `""` -> None (all).

    Raises:
        ValueError: text that is not a comma list of integers or ranges, or
            one that names a class twice.
    """
    if not text:
        return None
    classes = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            classes += (list(range(int(low), int(high) + 1)) if sep
                        else [int(low)])
    except ValueError:
        raise ValueError("classes must be a comma-separated list of class "
                         "indices or ranges, e.g. '5-9' or '0,2,4'. "
                         f"Received: classes={text!r}") from None
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0:
        raise ValueError("classes must name distinct, non-negative classes. "
                         f"Received: classes={text!r}")
    return classes


def select_classes(images, labels, classes):
    """Keeps the examples of `classes`, relabelled 0..len(classes)-1 in the
    order given (so `5-9` maps digit 5 to label 0)."""
    lookup = np.full(max(int(labels.max()), max(classes)) + 1, -1, np.int64)
    lookup[classes] = np.arange(len(classes))
    new = lookup[labels.astype(np.int64)]
    keep = new >= 0
    return images[keep], new[keep].astype(labels.dtype)


def take_per_class(images, labels, per_class, seed=0):
    """A seeded random subset of `per_class` examples of every class,
    in the original order.

    Raises:
        ValueError: a class with fewer than `per_class` examples.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < per_class:
            raise ValueError(f"Class {label} has only {len(rows)} training "
                             f"examples. Received: per_class={per_class}")
        keep.append(rng.choice(rows, per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    return images[keep], labels[keep]
