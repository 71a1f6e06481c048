"""Foreground where there is none: organ-free slices that a method marks, and its predicted volume.

A network that never saw a background-only patch from a trusted label predicts foreground on slices
without any organ. Dice hides this on small structures; these counts show it. Slices are taken along
the first axis of the arrays nnU-Net's readers return (z for SimpleITK volumes), which is the axis
nnU-Net's 2d configuration slices along when its plans do not transpose the data.
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import numpy as np

from nnunetv2_alc.evaluation.cases import (detect_case_format, list_cases, match_cases, read_prediction,
                                           read_segmentation)
from nnunetv2_alc.label_volume import foreground_volume_ratio


def _require_same_shape(reference: np.ndarray, prediction: np.ndarray) -> None:
    if reference.shape != prediction.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, prediction {prediction.shape}")


def organ_free_slices(reference: np.ndarray, prediction: np.ndarray) -> tuple[int, int]:
    """(slices without reference foreground, of which the prediction marks some voxel) along axis 0."""
    _require_same_shape(reference, prediction)
    free = ~(reference > 0).reshape(reference.shape[0], -1).any(axis=1)
    marked = (prediction > 0).reshape(prediction.shape[0], -1).any(axis=1)
    return int(free.sum()), int((free & marked).sum())


def marked_slice_detail(reference: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of each organ-free slice the prediction marks (see :func:`organ_free_slices`): its marked voxels and its
    distance in slices to the nearest slice with reference foreground (-1 where the reference has none)."""
    _require_same_shape(reference, prediction)
    holds = (reference > 0).reshape(reference.shape[0], -1).any(axis=1)
    voxels = (prediction > 0).reshape(prediction.shape[0], -1).sum(axis=1)
    slices = np.flatnonzero(~holds & (voxels > 0))
    foreground = np.flatnonzero(holds)
    distance = (np.abs(slices[:, None] - foreground[None, :]).min(axis=1) if foreground.size
                else np.full(slices.size, -1))
    return voxels[slices], distance


def background_false_positives(reference_folder: str, prediction_folders: Mapping[str, str]) -> dict[str, dict]:
    """Per method: organ-free slices of the reference cases, how many it marks, and predicted / true volume.

    ``rate`` is marked / organ-free slices over all cases (NaN without organ-free slices);
    ``volume_ratio`` the mean over cases of predicted / reference foreground voxels (cases with a
    reference foreground only), and ``volume_ratios`` those per case: a mean can come from one or two
    cases where the prediction leaks into a neighbouring structure.
    """
    case_format = detect_case_format(reference_folder)
    cases = list_cases(reference_folder, case_format.file_ending)
    reference_paths = {case: os.path.join(reference_folder, case + case_format.file_ending) for case in cases}
    references = {case: read_segmentation(path, case_format.reader)[0] for case, path in reference_paths.items()}
    results = {}
    for method, folder in prediction_folders.items():
        match_cases(cases, folder, case_format.file_ending)
        free = marked = 0
        ratios = {}
        for case, reference in references.items():
            prediction = read_prediction(os.path.join(folder, case + case_format.file_ending), case_format.reader,
                                         reference, reference_paths[case])
            case_free, case_marked = organ_free_slices(reference, prediction)
            free, marked = free + case_free, marked + case_marked
            if (reference > 0).any():
                ratios[case] = foreground_volume_ratio(reference, prediction)
        results[method] = {"organ_free_slices": free, "marked": marked,
                           "rate": marked / free if free else float("nan"),
                           "volume_ratio": float(np.mean(list(ratios.values()))) if ratios else float("nan"),
                           "volume_ratios": ratios}
    return results


def format_count(value: float, unit: str = "", digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and ``unit``; a dash for NaN (nothing to count, e.g. no organ-free
    slice in single-slice data)."""
    return f"{value:.{digits}f}{unit}" if math.isfinite(value) else "–"


def format_background_table(results: Mapping[str, dict]) -> str:
    """Markdown table of :func:`background_false_positives`."""
    lines = ["| Method | organ-free slices with foreground | predicted / true volume |", "|---|---:|---:|"]
    for method, r in results.items():
        lines.append(f"| {method} | {format_count(100 * r['rate'], ' %', 1)} ({r['marked']} of "
                     f"{r['organ_free_slices']}) | {format_count(r['volume_ratio'])} |")
    return "\n".join(lines)
