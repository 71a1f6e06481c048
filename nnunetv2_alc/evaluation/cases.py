"""Finding, matching and reading segmentation files with nnU-Net's readers."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Type

import numpy as np
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.imageio.reader_writer_registry import LIST_OF_IO_CLASSES, determine_reader_writer_from_file_ending

KNOWN_FILE_ENDINGS: tuple[str, ...] = tuple(sorted(
    {ending for io_class in LIST_OF_IO_CLASSES for ending in io_class.supported_file_endings},
    key=len, reverse=True))


class EvaluationInputError(ValueError):
    """Bad evaluation input (missing folder or case, no cases, shape mismatch); message is one line."""


@dataclass(frozen=True)
class CaseFormat:
    """How the segmentations of one evaluation are stored."""

    file_ending: str
    reader: Type[BaseReaderWriter]


def detect_case_format(reference_folder: str, file_ending: str | None = None) -> CaseFormat:
    """File ending and nnU-Net reader of the segmentations in ``reference_folder``.

    Without ``file_ending`` it is inferred from the file names, which must all share one
    ending that an nnU-Net reader supports (other files, e.g. ``dataset.json``, are ignored).
    """
    require_folder(reference_folder, "reference")
    if file_ending is None:
        endings = {_known_ending(name) for name in os.listdir(reference_folder)} - {None}
        if not endings:
            raise EvaluationInputError(
                f"no segmentation files ({', '.join(KNOWN_FILE_ENDINGS)}) in reference folder {reference_folder}")
        if len(endings) > 1:
            raise EvaluationInputError(f"reference folder {reference_folder} mixes file endings {sorted(endings)}; "
                                       "choose one with --file-ending")
        file_ending = endings.pop()
    cases = list_cases(reference_folder, file_ending)
    if not cases:
        raise EvaluationInputError(f"no *{file_ending} files in reference folder {reference_folder}")
    example = os.path.join(reference_folder, cases[0] + file_ending)
    try:
        reader = determine_reader_writer_from_file_ending(file_ending, example, verbose=False)
    except RuntimeError as error:
        raise EvaluationInputError(f"no nnU-Net reader can open {example}") from error
    return CaseFormat(file_ending, reader)


def list_cases(folder: str, file_ending: str) -> list[str]:
    """Sorted case identifiers (file names without ``file_ending``) of the files in ``folder``."""
    return sorted(name[:-len(file_ending)] for name in os.listdir(folder)
                  if name.endswith(file_ending) and os.path.isfile(os.path.join(folder, name)))


def match_cases(reference_cases: list[str], prediction_folder: str, file_ending: str) -> None:
    """Raise ``EvaluationInputError`` naming the reference cases ``prediction_folder`` lacks."""
    missing = sorted(set(reference_cases) - set(list_cases(prediction_folder, file_ending)))
    if missing:
        shown = ", ".join(case + file_ending for case in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise EvaluationInputError(
            f"prediction folder {prediction_folder} lacks {len(missing)} of {len(reference_cases)} "
            f"reference cases: {shown}")


def read_segmentation(path: str, reader: Type[BaseReaderWriter]) -> tuple[np.ndarray, tuple[float, ...]]:
    """Label map of ``path`` and its spacing in mm, one value per array axis.

    nnU-Net readers return ``(1, *spatial)`` arrays with ``properties['spacing']`` in array
    axis order (z, y, x for SimpleITK volumes); 2D images come as ``(1, 1, y, x)`` with a
    dummy first spacing, and are returned here as ``(y, x)`` arrays with their 2D spacing.
    """
    try:
        seg, properties = reader().read_seg(path)
    except (RuntimeError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EvaluationInputError(f"cannot read {path}: {first_line}") from error
    seg = seg[0]
    spacing = tuple(float(value) for value in properties["spacing"])
    if seg.ndim == 3 and seg.shape[0] == 1:
        seg, spacing = seg[0], spacing[1:]
    return seg, spacing


def read_prediction(path: str, reader: Type[BaseReaderWriter], reference: np.ndarray,
                    reference_path: str) -> np.ndarray:
    """Label map of ``path``; ``EvaluationInputError`` naming both files where its shape is not the reference's."""
    prediction, _ = read_segmentation(path, reader)
    if prediction.shape != reference.shape:
        raise EvaluationInputError(f"{path} has shape {prediction.shape} but its reference {reference_path} has "
                                   f"shape {reference.shape}")
    return prediction


def require_folder(folder: str, role: str) -> None:
    """Raise ``EvaluationInputError`` if ``folder`` is not a directory."""
    if not os.path.isdir(folder):
        raise EvaluationInputError(f"{role} folder {folder} does not exist")


def _known_ending(file_name: str) -> str | None:
    """The longest nnU-Net file ending of ``file_name`` as spelled there, or ``None``."""
    return next((file_name[-len(ending):] for ending in KNOWN_FILE_ENDINGS
                 if file_name.lower().endswith(ending)), None)
