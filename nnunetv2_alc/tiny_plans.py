"""Smaller networks for CPU runs (tests, the demo, CPU benchmarks), written into nnU-Net's plans.

:func:`shrink_network` edits ``features_per_stage`` (and optionally the batch size) of one configuration
in a preprocessed dataset's plans file, as a user editing nnU-Net's plans by hand would; patch size and
stages are left as planned. :func:`add_configuration` adds a new configuration at a coarser spacing with
its own patch and network, which ``nnUNetv2_preprocess -c <name>`` and ``nnUNetv2_train`` then use.
"""

from __future__ import annotations

import json
import os

from nnunetv2_alc.atomic_write import write_text_atomic


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
    """Written whole: a trainer starting meanwhile reads the old or the new plans, never half a file."""
    write_text_atomic(plans_file, json.dumps(plans, indent=4))


def add_configuration(plans_file: str | os.PathLike, name: str, base: str, spacing: list[float],
                      patch_size: list[int], n_stages: int, base_features: int, max_features: int, batch_size: int,
                      data_identifier: str | None = None, overwrite: bool = False) -> dict:
    """Add configuration ``name`` to a plans file: ``base`` (a planned configuration) at another spacing and size.

    The new configuration copies ``base`` (normalisation, resampling, network class, norm and nonlinearity)
    and replaces the target spacing in mm (one value for every axis, or one per axis in nnU-Net's order),
    the patch size, the batch size and the network: ``n_stages`` stages of two 3x3(x3) convolutions, each
    after the first downsampling every axis by 2, with ``base_features * 2**stage`` features capped at
    ``max_features``. ``data_identifier`` names the preprocessed data folder (default
    ``<plans name>_<name>``); configurations that differ only in batch size can share one.
    ``nnUNetv2_preprocess -c <name>`` then resamples the data, and ``nnUNetv2_train ... <name>`` trains it.
    Returns the configuration written.
    """
    plans = _read(plans_file)
    configurations = plans.get("configurations", {})
    if base not in configurations:
        raise KeyError(f"{plans_file} has no configuration {base!r} to start from; planned: {sorted(configurations)}")
    if name in configurations and not overwrite:
        raise ValueError(f"{plans_file} already has a configuration {name!r}; choose another name or overwrite it")
    source = configurations[base]
    if "inherits_from" in source or "architecture" not in source:
        raise ValueError(f"configuration {base!r} of {plans_file} inherits from another; start from a planned one")
    network = source["architecture"]["network_class_name"]
    if not network.endswith(".PlainConvUNet"):  # a residual encoder counts blocks, not convolutions, per stage
        raise ValueError(f"configuration {base!r} of {plans_file} builds {network}; add_configuration writes a "
                         "PlainConvUNet's stages: start from nnU-Net's default plans (nnUNetPlans)")
    dims = len(source["patch_size"])
    spacing = [float(s) for s in (spacing * dims if len(spacing) == 1 else spacing)]
    if len(spacing) != dims or len(patch_size) != dims:
        raise ValueError(f"{base!r} is {dims}d: give 1 or {dims} spacing values and {dims} patch sizes, got "
                         f"spacing {spacing} and patch size {patch_size}")
    if min(spacing) <= 0 or n_stages < 2 or base_features < 1 or max_features < base_features or batch_size < 1:
        raise ValueError(f"need spacing > 0, n_stages >= 2, 1 <= base_features <= max_features and batch_size >= 1; "
                         f"got {spacing}, {n_stages}, {base_features}, {max_features}, {batch_size}")
    factor = 2 ** (n_stages - 1)
    if any(p % factor for p in patch_size):
        raise ValueError(f"patch size {patch_size} must be divisible by {factor} on every axis for {n_stages} stages "
                         f"(each stage after the first halves it)")
    config = {k: v for k, v in json.loads(json.dumps(source)).items() if k not in ("next_stage", "previous_stage")}
    old_spacing = source["spacing"]
    config.update(
        data_identifier=data_identifier or f"{plans['plans_name']}_{name}", batch_size=batch_size,
        patch_size=list(patch_size), spacing=spacing,
        median_image_size_in_voxels=[m * o / s for m, o, s in zip(source["median_image_size_in_voxels"],
                                                                   old_spacing, spacing)])
    kwargs = config["architecture"]["arch_kwargs"]
    kwargs.update(n_stages=n_stages, features_per_stage=[min(base_features * 2 ** s, max_features)
                                                         for s in range(n_stages)],
                  kernel_sizes=[[3] * dims] * n_stages, strides=[[1] * dims] + [[2] * dims] * (n_stages - 1),
                  n_conv_per_stage=[2] * n_stages, n_conv_per_stage_decoder=[2] * (n_stages - 1))
    configurations[name] = config
    _write(plans, plans_file)
    return config
