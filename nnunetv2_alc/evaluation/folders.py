"""Evaluating folders of predicted segmentations against a folder of references."""
from __future__ import annotations

import os
from multiprocessing import get_context
from typing import Any, Iterator, Mapping, Sequence, Type

from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from tqdm import tqdm

from nnunetv2_alc.evaluation.cases import (EvaluationInputError, detect_case_format, list_cases, match_cases,
                                           read_prediction, read_segmentation, require_folder)
from nnunetv2_alc.evaluation.metrics import BOTH_EMPTY, multiclass_metrics
from nnunetv2_alc.evaluation.result_files import method_file_stems, write_results
from nnunetv2_alc.evaluation.summary import summarize

DEFAULT_NUM_PROCESSES = min(4, os.cpu_count() or 1)

CaseTask = tuple[str, str, dict[str, str], Sequence[int] | None, Type[BaseReaderWriter]]
"""(case, reference path, {method: prediction path}, labels, reader class)."""
MethodMetrics = dict[str, dict[int, dict[str, float]]]
"""``{method: {label: metrics}}`` of one case."""


def evaluate_folders(reference_folder: str, prediction_folders: Mapping[str, str],
                     labels: Sequence[int] | None = None, num_processes: int = DEFAULT_NUM_PROCESSES,
                     output_folder: str | None = None, file_ending: str | None = None,
                     show_progress: bool = True) -> dict[str, Any]:
    """Metrics of every case of every prediction folder against ``reference_folder``.

    Cases are matched by file name; every reference case needs a prediction in each folder
    (files of predictions without a reference are ignored). The spacing comes from the
    reference files.

    Args:
        reference_folder: reference segmentations in any nnU-Net-readable format.
        prediction_folders: ``{method name: folder}``; the order is kept in the table.
        labels: foreground labels to evaluate; ``None`` means every non-zero label found in
            any reference or prediction (a label absent from both maps of a case then scores
            as two empty masks).
        num_processes: worker processes over cases (1: no pool).
        output_folder: where to write ``<method>.json``, ``<method>.csv`` and
            ``comparison.md``; ``None`` writes nothing.
        file_ending: e.g. ``".nii.gz"``; ``None`` infers it from the reference folder.
        show_progress: show a tqdm progress bar over cases.

    Returns:
        ``{"reference_folder", "file_ending", "labels": [int], "cases": [str], "methods":
        {name: {"prediction_folder", "per_case": {case: {label: metrics}},
        "summary": {label: {metric: {"mean", "std", "n", "n_undefined"}}}}}}`` with labels
        as strings in the per-case and summary keys.

    Raises:
        EvaluationInputError: missing folder or prediction, no cases, shape mismatch.
    """
    if not prediction_folders:
        raise EvaluationInputError("no prediction folders given")
    if labels is not None and len(labels) == 0:
        raise EvaluationInputError("the list of labels is empty")
    if output_folder is not None:
        method_file_stems(prediction_folders)
    case_format = detect_case_format(reference_folder, file_ending)
    cases = list_cases(reference_folder, case_format.file_ending)
    for folder in prediction_folders.values():
        require_folder(folder, "prediction")
        match_cases(cases, folder, case_format.file_ending)

    tasks: list[CaseTask] = [
        (case, os.path.join(reference_folder, case + case_format.file_ending),
         {name: os.path.join(folder, case + case_format.file_ending) for name, folder in prediction_folders.items()},
         labels, case_format.reader)
        for case in cases]
    per_case: dict[str, dict[str, dict[int, dict[str, float]]]] = {name: {} for name in prediction_folders}
    for case, by_method in tqdm(_map(tasks, num_processes), total=len(tasks), desc="cases", disable=not show_progress):
        for name, by_label in by_method.items():
            per_case[name][case] = by_label

    evaluated = list(labels) if labels is not None else sorted(
        {label for by_case in per_case.values() for by_label in by_case.values() for label in by_label})
    if not evaluated:
        raise EvaluationInputError("no foreground label in any reference or prediction; pass the labels explicitly")
    keys = [str(label) for label in evaluated]
    methods = {}
    for name, folder in prediction_folders.items():
        method_cases = {case: {str(label): dict(per_case[name][case].get(label, BOTH_EMPTY)) for label in evaluated}
                        for case in cases}
        methods[name] = {"prediction_folder": folder, "per_case": method_cases,
                         "summary": summarize(method_cases, keys)}
    results = {"reference_folder": reference_folder, "file_ending": case_format.file_ending,
               "labels": [int(label) for label in evaluated], "cases": cases, "methods": methods}
    if output_folder is not None:
        write_results(results, output_folder)
    return results


def _map(tasks: list[CaseTask], num_processes: int) -> Iterator[tuple[str, MethodMetrics]]:
    """``_evaluate_case`` over ``tasks``: in order without a pool, else unordered from a spawn pool."""
    if num_processes <= 1 or len(tasks) <= 1:
        yield from map(_evaluate_case, tasks)
        return
    with get_context("spawn").Pool(min(num_processes, len(tasks))) as pool:
        yield from pool.imap_unordered(_evaluate_case, tasks)


def _evaluate_case(task: CaseTask) -> tuple[str, MethodMetrics]:
    """Per-method, per-label metrics of one case; reads the reference once."""
    case, reference_path, prediction_paths, labels, reader = task
    reference, spacing = read_segmentation(reference_path, reader)
    by_method: MethodMetrics = {}
    for name, prediction_path in prediction_paths.items():
        prediction = read_prediction(prediction_path, reader, reference, reference_path)
        by_method[name] = multiclass_metrics(prediction, reference, spacing, labels)
    return case, by_method
