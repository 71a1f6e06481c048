"""nnUNetv2_alc_make_noisy and nnUNetv2_alc_tag: tagging, corruption, manifest, reproducibility, idempotence, errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from conversion_fixtures import (
    nnunet_env,  # noqa: F401  (pytest fixture)
    read_array,
    run_entry_point,
    write_png_dataset,
    write_raw_dataset,
)

from nnunetv2_alc.label_quality import LABEL_QUALITY_KEY
from nnunetv2_alc.label_volume import foreground_volume_ratio
from noise_generation import perturb_mask
from noise_generation.make_noisy import main as make_noisy_main
from noise_generation.make_noisy import make_noisy_dataset, summarize
from noise_generation.tag import main as tag_main
from noise_generation.tag import tag_dataset


def labels_of(folder, sub="labelsTr", ending=".nii.gz"):
    return {p.name[: -len(ending)]: read_array(p) for p in sorted((folder / sub).glob(f"*{ending}"))}


def test_make_noisy_corrupts_lq_cases_as_recorded_and_keeps_clean_copies(nnunet_env):
    folder = write_raw_dataset(11, 6, n_classes=2)
    originals = labels_of(folder)
    rows = make_noisy_dataset(11, hq_count=2, radius=(1, 4), seed=5, show_progress=False)

    clean = labels_of(folder, "labelsTr_clean")
    assert sorted(clean) == sorted(originals) and all(np.array_equal(clean[c], originals[c]) for c in originals)
    tags = json.loads((folder / "dataset.json").read_text())[LABEL_QUALITY_KEY]
    assert sorted(tags) == sorted(originals) and list(tags.values()).count("HQ") == 2
    noisy = labels_of(folder)
    for row in rows:
        clean = originals[row["case"]]
        assert row["quality"] == tags[row["case"]] and row["seed"] == 5
        if row["quality"] == "HQ":
            assert row["operation"] == "none" and np.array_equal(noisy[row["case"]], clean)
            assert row["volume_ratio"] == 1.0
        else:
            assert row["operation"] in ("dilate", "erode") and 1 <= row["radius_drawn"] <= 4
            assert np.array_equal(noisy[row["case"]], perturb_mask(clean, row["operation"], row["radius"]))
            assert row["dice"] < 1.0
            ratio = (noisy[row["case"]] > 0).sum() / (clean > 0).sum()
            assert row["volume_ratio"] == pytest.approx(ratio, abs=1e-6)
            assert ratio > 1 if row["operation"] == "dilate" else ratio < 1
    with open(folder / "noise_manifest.csv", newline="") as handle:
        assert [r["case"] for r in csv.DictReader(handle)] == [r["case"] for r in rows]
    assert json.loads((folder / "noise_manifest.json").read_text())["cases"] == rows
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_same_seed_same_labels_rerun_never_corrupts_twice(nnunet_env):
    folder = write_raw_dataset(12, 5)
    first_rows = make_noisy_dataset(folder, hq_count=1, radius=(2, 5), seed=0, show_progress=False)
    first = labels_of(folder)
    second_rows = make_noisy_dataset(folder, hq_count=1, radius=(2, 5), seed=0, show_progress=False)
    assert second_rows == first_rows
    assert all(np.array_equal(first[c], labels_of(folder)[c]) for c in first)
    make_noisy_dataset(folder, hq_count=1, radius=(2, 5), seed=1, show_progress=False)
    assert any(not np.array_equal(first[c], labels_of(folder)[c]) for c in first)


def test_corruption_of_a_case_does_not_depend_on_the_other_cases(nnunet_env, tmp_path):
    full = write_raw_dataset(13, 6)
    part = tmp_path / "part"
    shutil.copytree(full, part)
    for name in ("toy_000", "toy_001"):
        (part / "imagesTr" / f"{name}_0000.nii.gz").unlink()
        (part / "labelsTr" / f"{name}.nii.gz").unlink()
    hq = ["toy_000", "toy_002"]
    full_rows = {r["case"]: r for r in make_noisy_dataset(full, hq_list=hq, seed=9, show_progress=False)}
    part_rows = make_noisy_dataset(part, hq_list=["toy_002"], seed=9, show_progress=False)
    for row in part_rows:
        assert row == full_rows[row["case"]]
        assert np.array_equal(labels_of(part)[row["case"]], labels_of(full)[row["case"]])


def test_tag_then_make_noisy_keeps_the_existing_tags(nnunet_env, tmp_path, capsys):
    folder = write_raw_dataset(14, 4)
    before = labels_of(folder)
    listing = tmp_path / "hq.txt"
    listing.write_text("toy_001\n")
    tag_main(["-d", "14", "--hq-list", str(listing)])
    assert "4 training cases: 1 HQ, 3 LQ" in capsys.readouterr().out
    assert all(np.array_equal(before[c], labels_of(folder)[c]) for c in before)  # tagging leaves labels alone
    rows = make_noisy_dataset("Dataset014_Toy", radius=(1, 2), show_progress=False)
    assert {r["case"] for r in rows if r["quality"] == "HQ"} == {"toy_001"}

    tags = tag_dataset(folder, hq_count=2, seed=3)
    assert "warning" in capsys.readouterr().err  # labels were corrupted under the old tags
    rows = make_noisy_dataset(folder, radius=(1, 2), show_progress=False)
    assert {r["case"] for r in rows if r["quality"] == "HQ"} == {c for c, q in tags.items() if q == "HQ"}
    clean = labels_of(folder, "labelsTr_clean")
    for case, quality in tags.items():
        if quality == "HQ":  # a formerly LQ case now HQ gets its clean label back
            assert np.array_equal(labels_of(folder)[case], clean[case])


def test_2d_png_dataset_is_perturbed_with_a_disk(nnunet_env):
    folder = write_png_dataset(15, 3)
    clean = labels_of(folder, ending=".png")
    rows = make_noisy_dataset(15, hq_count=1, radius=(2, 3), seed=0, show_progress=False)
    for row in rows:
        if row["quality"] == "LQ":
            expected = perturb_mask(clean[row["case"]], row["operation"], row["radius"])
            assert np.array_equal(labels_of(folder, ending=".png")[row["case"]], expected)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-d", "16"], "has no 'label_quality' entry"),
        (["-d", "16", "--hq-fraction", "0.01"], "leaves no HQ case"),
        (["-d", "16", "--hq-count", "3"], "leaves no LQ case"),
        (["-d", "16", "--hq-count", "1", "--radius", "4", "2"], "radius range"),
        (["-d", "99", "--hq-count", "1"], "cannot resolve dataset '99'"),
        (["-d", "16", "--hq-count", "1", "--seed", "-1"], "seed must be an integer >= 0"),
    ],
)
def test_make_noisy_bad_input_exits_2_with_one_line(nnunet_env, capsys, argv, message):
    folder = write_raw_dataset(16, 3)
    before = labels_of(folder)
    with pytest.raises(SystemExit) as exit_info:
        make_noisy_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("nnUNetv2_alc_make_noisy: error:")
    assert all(np.array_equal(before[c], labels_of(folder)[c]) for c in before)
    assert not (folder / "noise_manifest.csv").exists()


def test_missing_label_is_reported(nnunet_env, capsys):
    folder = write_raw_dataset(17, 3)
    (folder / "labelsTr" / "toy_001.nii.gz").unlink()
    with pytest.raises(SystemExit):
        tag_main(["-d", str(folder), "--hq-count", "1"])
    assert "lacks the label of 1 case(s): toy_001" in capsys.readouterr().err


def test_installed_entry_points_run(nnunet_env, tmp_path):
    folder = write_raw_dataset(18, 4)
    listing = tmp_path / "hq.txt"
    listing.write_text("toy_000\ntoy_003\n")
    tagged = run_entry_point("nnUNetv2_alc_tag", "-d", "18", "--hq-list", listing, env=nnunet_env)
    assert tagged.returncode == 0, tagged.stderr
    made = run_entry_point("nnUNetv2_alc_make_noisy", "-d", "18", "--radius", "1", "3", "--seed", "2", env=nnunet_env)
    assert made.returncode == 0, made.stderr
    assert "Cases: 4 training cases: 2 HQ, 2 LQ" in made.stdout and "Mean Dice noisy vs clean: LQ" in made.stdout
    assert "LQ foreground volume noisy / clean: mean" in made.stdout
    assert "noisy labels" in made.stderr  # the progress bar
    tags = json.loads((folder / "dataset.json").read_text())[LABEL_QUALITY_KEY]
    assert tags == {"toy_000": "HQ", "toy_001": "LQ", "toy_002": "LQ", "toy_003": "HQ"}

    failed = run_entry_point("nnUNetv2_alc_make_noisy", "-d", "18", "--hq-count", "4", env=nnunet_env)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().count("\n") == 0 and "leaves no LQ case" in failed.stderr


def test_summary_reports_the_volume_bias_of_the_lq_labels():
    def row(case, quality, operation, dice, ratio):
        return {"case": case, "quality": quality, "operation": operation, "radius": 3, "radius_drawn": 3,
                "seed": 0, "dice": dice, "volume_ratio": ratio}
    rows = [row("a", "HQ", "none", 1.0, 1.0), row("b", "LQ", "dilate", 0.6, 2.0), row("c", "LQ", "dilate", 0.5, 3.0),
            row("d", "LQ", "erode", 0.7, 0.4)]
    assert summarize(rows).splitlines()[-1] == "LQ foreground volume noisy / clean: mean 1.80 (dilate 2.50, erode 0.40)"
    assert "volume" not in summarize(rows[:1])  # no LQ case, no bias line
    empty = np.zeros((3, 4), dtype=np.uint8)
    assert foreground_volume_ratio(empty, empty) == 1.0
    clean = empty.copy()
    clean[1, 1:3] = 1
    assert foreground_volume_ratio(clean, perturb_mask(clean, "dilate", 1)) == pytest.approx(8 / 2)
