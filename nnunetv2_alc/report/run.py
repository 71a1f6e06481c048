"""``write_label_report``: the teacher's passes over every LQ training case, refined labels, ranking, sheet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets
from tqdm import tqdm

from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.label_quality import LQ, check_cases_tagged, read_label_quality, split_by_quality
from nnunetv2_alc.report.agreement import AGREEMENT_PNG, draw_agreement
from nnunetv2_alc.report.model import (TEACHER_CHECKPOINT, check_dataset_matches, load_predictor, saved_pass_settings,
                                       settings_files)
from nnunetv2_alc.report.passes import make_stochastic, pass_probabilities
from nnunetv2_alc.report.scoring import CaseScore, rank, refine_and_score, score_case
from nnunetv2_alc.report.sheet import PNG_NAME, SheetRow, draw_worst_cases
from nnunetv2_alc.report.table import write_report_csv
from nnunetv2_alc.raw_dataset import RawDataset, open_raw_dataset, read_label, write_label
from nnunetv2_alc.input_errors import InputDataError

REFINED_FOLDER = "refined_labels"


def lq_cases(raw: RawDataset) -> list[str]:
    """The dataset's LQ training cases (every case must be tagged); an error if there is none."""
    tags = read_label_quality(raw.dataset_json, str(raw.dataset_json_path))
    check_cases_tagged(tags, raw.training_cases, str(raw.dataset_json_path))
    _, lq = split_by_quality(raw.training_cases, tags)
    if not lq:
        raise InputDataError(f"{raw.dataset_json_path} tags no training case {LQ}: the report checks LQ labels only. "
                             "Tag the rough labels LQ (nnUNetv2_alc_tag) first")
    return lq


def write_label_report(model_folder: str | os.PathLike, dataset: int | str | os.PathLike, output: str | os.PathLike,
                       fold: int | str = 0, checkpoint: str = TEACHER_CHECKPOINT, num_passes: Optional[int] = None,
                       worst: int = 6, device: torch.device = torch.device("cpu"), seed: int = 0,
                       show_progress: bool = True) -> list[CaseScore]:
    """Score every LQ training case of ``dataset`` with the model's m stochastic passes; return them ranked.

    Writes to ``output``: ``refined_labels/<case><file ending>`` (Y_ref of Eq. 6 with the geometry of the
    given label), ``label_report.csv`` (ranked, see :func:`nnunetv2_alc.report.scoring.rank`),
    ``given_vs_refined.png`` (:mod:`nnunetv2_alc.report.agreement`) and ``worst_cases.png`` (the ``worst``
    first cases; none if ``worst`` is 0). The passes use the training's
    dropout and input noise, saved in the checkpoint (:func:`~nnunetv2_alc.report.model.saved_pass_settings`;
    none saved: no dropout, ALCConfig's default noise); ``num_passes`` defaults to the training's m.
    """
    raw = open_raw_dataset(dataset)
    cases = lq_cases(raw)
    saved = saved_pass_settings(model_folder, fold, checkpoint)
    settings = saved or ALCConfig(dropout_placement="none")
    num_passes = settings.num_passes if num_passes is None else num_passes
    if num_passes < 1 or worst < 0:
        raise InputDataError(f"--num-passes must be >= 1 and --worst >= 0, got {num_passes} and {worst}")
    predictor = load_predictor(model_folder, fold, checkpoint, device)
    check_dataset_matches(predictor, raw)
    dropout = make_stochastic(predictor, settings)
    if saved is None:
        print(f"Note: no ALC settings in {' or '.join(settings_files(checkpoint))} of fold {fold} (not written by "
              f"an ALC trainer): the passes add no dropout and use ALCConfig's default input noise (std "
              f"{settings.noise_std}, clip {settings.noise_clip})"
              + ("." if dropout else "; they differ by their input noise only."))
    elif not dropout:
        print("Note: the model was trained without dropout; the passes differ by their input noise only.")
    torch.manual_seed(seed)

    output = Path(output)
    refined_folder = output / REFINED_FOLDER
    refined_folder.mkdir(parents=True, exist_ok=True)
    files = get_filenames_of_train_images_and_targets(str(raw.folder), raw.dataset_json)
    reader_writer = raw.reader_writer()
    scores = []
    for case in tqdm(cases, desc=f"Teacher passes (m={num_passes})", unit="case", disable=not show_progress):
        refined, uncertainty = refine_and_score(pass_probabilities(predictor, files[case]["images"], num_passes))
        given, properties = read_label(reader_writer, raw.labels_dir / raw.label_name(case))
        if given[0].shape != refined.shape:
            raise InputDataError(f"{case}: label shape {given[0].shape} differs from its image's {refined.shape}")
        write_label(reader_writer, refined[None], refined_folder / raw.label_name(case), properties)
        clean_file = raw.clean_labels_dir / raw.label_name(case)
        clean = read_label(reader_writer, clean_file)[0][0] if clean_file.is_file() else None
        scores.append(score_case(case, given[0], refined, uncertainty, clean))

    ranked = rank(scores)
    write_report_csv(ranked, output, {c: f"{REFINED_FOLDER}/{raw.label_name(c)}" for c in cases})
    draw_agreement(ranked, output / AGREEMENT_PNG)
    if worst:
        rows = [_sheet_row(position, score, raw, reader_writer, files[score.case]["images"], refined_folder)
                for position, score in enumerate(ranked[:worst], start=1)]
        draw_worst_cases(rows, output / PNG_NAME)
    return ranked


def _sheet_row(position: int, score: CaseScore, raw: RawDataset, reader_writer: BaseReaderWriter,
               image_files: list[str], refined_folder: Path) -> SheetRow:
    images, properties = reader_writer.read_images(image_files)
    given = read_label(reader_writer, raw.labels_dir / raw.label_name(score.case))[0][0]
    refined = read_label(reader_writer, refined_folder / raw.label_name(score.case))[0][0]
    return SheetRow(position, score, images[0], given, refined, tuple(properties["spacing"]))
