"""Where label maps mark organ-free slices: the voxels on each marked slice and its distance to the organ.

The evidence grids count the organ-free test slices a method marks (``background`` in each run file). This
looks closer, for the results page's reading of those counts: of every marked organ-free slice, how many
voxels it holds and how many slices lie between it and the nearest slice of the reference organ. The
"predictions" can be any folder of label maps named as the references, e.g. a grid's test predictions
against ``labelsTs``, or a noisy dataset's given training labels against its clean ones::

    python benchmarks/organ_free_detail.py --reference $nnUNet_raw/Dataset600_LeftAtrium/labelsTs \\
        --labels "ALC w/o LR=WORK/predictions/Dataset600_LeftAtrium/seed0/nnUNetTrainerALC_noLR" \\
        --out benchmarks/results/la_test_cpu2d_b2 --stem organ_free_detail
    python benchmarks/organ_free_detail.py --reference $nnUNet_raw/Dataset600_LeftAtrium/labelsTr_clean \\
        --labels "given=$nnUNet_raw/Dataset600_LeftAtrium/labelsTr" --out OUT --stem organ_free_given_labels

Slices are taken along the first array axis, as ``nnunetv2_alc.evaluation.background`` counts them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from harness import write_report

from nnunetv2_alc.evaluation.background import marked_slice_detail, organ_free_slices
from nnunetv2_alc.evaluation.cases import (EvaluationInputError, detect_case_format, list_cases, match_cases,
                                           read_prediction, read_segmentation, require_folder)


def detail(reference_folder: str, label_folder: str) -> dict:
    """Summary and per-case counts of the organ-free slices that the label maps of ``label_folder`` mark."""
    case_format = detect_case_format(reference_folder)
    cases = list_cases(reference_folder, case_format.file_ending)
    match_cases(cases, label_folder, case_format.file_ending)
    per_case, voxels, distances = {}, [], []
    for case in cases:
        name = case + case_format.file_ending
        reference_path = os.path.join(reference_folder, name)
        reference = read_segmentation(reference_path, case_format.reader)[0]
        labels = read_prediction(os.path.join(label_folder, name), case_format.reader, reference, reference_path)
        free, marked = organ_free_slices(reference, labels)
        case_voxels, case_distances = marked_slice_detail(reference, labels)
        voxels += case_voxels.tolist()
        distances += case_distances.tolist()
        possible = marked_slice_detail(reference, np.ones_like(reference))[1]
        per_case[case] = {"organ_free_slices": free, "marked": marked,
                          "farthest": int(case_distances.max()) if marked else None,
                          "farthest_possible": int(possible.max()) if possible.size and possible.max() >= 0 else None}
    free, marked = sum(c["organ_free_slices"] for c in per_case.values()), len(voxels)
    marking = sum(c["marked"] > 0 for c in per_case.values())
    return {"folder": label_folder, "cases": len(cases), "cases_marking": marking,
            "organ_free_slices": free, "marked": marked, "rate": marked / free if free else None,
            "voxels_median": float(np.median(voxels)) if voxels else None,
            "voxels_max": max(voxels, default=None),
            "distance_median": float(np.median(distances)) if distances else None,
            "distance_max": max(distances, default=None), "per_case": per_case}


def table(reference: str, results: dict[str, dict]) -> list[str]:
    """Markdown table of :func:`detail` per label folder."""
    possible = {case: c["farthest_possible"] for case, c in next(iter(results.values()))["per_case"].items()
                if c["farthest_possible"] is not None}
    bound = (f" No organ-free slice of these references lies further than {max(possible.values())} slices from "
             f"its organ ({max(possible, key=possible.get)}), so no label map can reach further." if possible else "")
    lines = [f"Organ-free slices (no foreground in `{reference}`) that each folder's label maps mark; distance in "
             f"slices to the nearest slice with reference foreground.{bound}", "",
             "| Labels | cases marking any | organ-free slices marked | voxels a marked slice: median (max) "
             "| distance: median (max) |", "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        share = f"{r['marked']} of {r['organ_free_slices']}" + (f" ({100 * r['rate']:.1f} %)" if r["rate"] is not None
                                                              else "")
        voxels = f"{r['voxels_median']:g} ({r['voxels_max']})" if r["marked"] else "–"
        distance = f"{r['distance_median']:g} ({r['distance_max']})" if r["marked"] else "–"
        lines.append(f"| {name} | {r['cases_marking']} of {r['cases']} | {share} | {voxels} | {distance} |")
    return lines


def named_folder(value: str) -> tuple[str, str]:
    """``NAME=FOLDER`` of ``--labels``."""
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"--labels takes NAME=FOLDER, got {value!r}")
    return name, folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="folder of the reference label maps (e.g. labelsTs)")
    parser.add_argument("--labels", required=True, nargs="+", type=named_folder, metavar="NAME=FOLDER",
                        help="label maps to look at, named for the table, each folder holding every reference case")
    parser.add_argument("--out", required=True, type=Path, help="folder for STEM.json and STEM.md")
    parser.add_argument("--stem", default="organ_free_detail")
    args = parser.parse_args(argv)
    try:
        for folder, role in [(args.reference, "reference")] + [(f, "labels") for _, f in args.labels]:
            require_folder(folder, role)
        results = {name: detail(args.reference, folder) for name, folder in args.labels}
    except EvaluationInputError as error:
        raise SystemExit(f"error: {error}") from error
    markdown = table(args.reference, results)
    write_report(args.out, args.stem, {"reference": args.reference, "labels": results}, markdown)
    print("\n".join(markdown))


if __name__ == "__main__":
    main()
