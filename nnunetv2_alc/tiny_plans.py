"""Shrink a planned network for CPU runs (tests, the demo, CPU benchmarks).

Edits ``features_per_stage`` (and optionally the batch size) of one configuration in a preprocessed
dataset's plans file, as a user editing nnU-Net's plans by hand would. Patch size and stages are left
as planned.
"""

from __future__ import annotations

import json
import os


def shrink_network(plans_file: str | os.PathLike, configuration: str, base_features: int = 4,
                   max_features: int = 32, batch_size: int | None = None) -> list[int]:
    """Set the configuration's features per stage to ``base * 2**stage`` capped at ``max_features``.

    ``batch_size`` replaces the planned batch size when given (2d plans of small images ask for
    batches of hundreds, too many for a CPU).
    """
    plans = _read(plans_file)
    try:
        kwargs = plans["configurations"][configuration]["architecture"]["arch_kwargs"]
    except KeyError:
        raise KeyError(f"{plans_file} has no configuration {configuration!r} with an architecture") from None
    features = [min(base_features * 2 ** stage, max_features) for stage in range(kwargs["n_stages"])]
    kwargs["features_per_stage"] = features
    if batch_size is not None:
        plans["configurations"][configuration]["batch_size"] = batch_size
    _write(plans, plans_file)
    return features


def set_batch_size(plans_file: str | os.PathLike, configuration: str, batch_size: int) -> None:
    """Replace one configuration's planned batch size, network unchanged."""
    plans = _read(plans_file)
    if configuration not in plans.get("configurations", {}):
        raise KeyError(f"{plans_file} has no configuration {configuration!r}")
    plans["configurations"][configuration]["batch_size"] = batch_size
    _write(plans, plans_file)


def _read(plans_file) -> dict:
    with open(plans_file) as f:
        return json.load(f)


def _write(plans: dict, plans_file) -> None:
    with open(plans_file, "w") as f:
        json.dump(plans, f, indent=4)
