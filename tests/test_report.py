"""nnUNetv2_alc_report: unit checks of its pieces, then the command on a tiny ALC model trained through the CLI
(the session's shared one, ``tiny3d`` in shared_runs.py)."""

from __future__ import annotations

import csv
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from test_dropout import hooked, tiny_unet
from shared_runs import TINY3D as DATASET, TINY3D_ID as DATASET_ID, run

from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.dropout import attached_dropout, has_dropout
from nnunetv2_alc.label_correction import refine_labels, sample_uncertainty
from nnunetv2_alc.report import main, write_label_report
from nnunetv2_alc.report import agreement, passes, run as report_run, scoring
from nnunetv2_alc.report.model import MODEL_FILES, STUDENT_CHECKPOINT, TEACHER_CHECKPOINT, saved_pass_settings
from nnunetv2_alc.report.passes import make_stochastic
from nnunetv2_alc.report.scoring import CaseScore, rank, refine_and_score, score_case

TRAINER = "nnUNetTrainerALC"
# module fixtures on conftest.py's tiny3d: one xdist worker runs the module, building each once
pytestmark = pytest.mark.xdist_group("tiny3d_modules")
COLUMNS = ["rank", "case", "dice_given_vs_refined", "uncertainty", "changed_fraction", "disagreement_slice",
           "refined_label", "dice_given_vs_clean", "dice_refined_vs_clean"]


# ------------------------------------------------------------------ pieces, no training
def test_slabs_give_the_same_refinement_and_uncertainty(monkeypatch):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(4, 3, 7, 5, 6), dim=1).numpy()  # (m, C, *spatial)
    whole_refined = refine_labels(torch.from_numpy(probs[:, None]))[0].numpy()
    whole_uncertainty = float(sample_uncertainty(torch.from_numpy(probs[:, None]))[0])
    monkeypatch.setattr(scoring, "SLAB_VOXELS", 2 * 5 * 6)  # slabs of two slices, the last one of one
    refined, uncertainty = refine_and_score(probs)
    assert np.array_equal(refined, whole_refined)
    assert uncertainty == pytest.approx(whole_uncertainty, rel=1e-6)


@pytest.mark.parametrize("with_clean", [True, False])
def test_agreement_plot_with_and_without_clean_labels(tmp_path, with_clean, monkeypatch):
    drawn = {}
    monkeypatch.setattr(agreement.plt.Axes, "set_title", lambda ax, title, **_: drawn.setdefault("title", title))
    scores = [CaseScore(c, d, 0.1, 0.0, 0, 1 - k if with_clean else None)
              for k, (c, d) in enumerate([("a", 0.9), ("b", 0.5), ("c", 0.7)])]
    agreement.draw_agreement(scores, tmp_path / agreement.AGREEMENT_PNG)
    assert (tmp_path / agreement.AGREEMENT_PNG).read_bytes()[:4] == b"\x89PNG"
    # clean Dice 1, 0, -1 against scores 0.9, 0.5, 0.7: ranks (3, 1, 2) and (3, 2, 1), rho = 0.5
    assert drawn["title"] == ("3 LQ cases; Spearman rho = 0.50" if with_clean
                              else "3 LQ cases (no clean labels to compare with)")


def test_score_and_rank():
    given = np.zeros((4, 6, 6), np.uint8)
    given[1:3, 1:5, 1:5] = 1
    refined = given.copy()
    refined[2] = 0  # slice 2 disagrees most
    score = score_case("a", given, refined, 0.5, clean=given)
    assert score.disagreement_slice == 2 and score.dice_given_vs_clean == 1.0
    assert score.dice_given_vs_refined == pytest.approx(2 * 16 / (32 + 16))
    assert score.changed_fraction == pytest.approx(16 / given.size)
    same = score_case("b", given, given, 0.1)
    assert same.disagreement_slice == 1 and same.dice_refined_vs_clean is None  # most foreground when no change
    ranked = rank([CaseScore("x", 0.9, 0.1, 0, 0), CaseScore("y", 0.5, 0.1, 0, 0), CaseScore("z", 0.9, 0.3, 0, 0)])
    assert [s.case for s in ranked] == ["y", "z", "x"]  # lowest Dice first, then highest uncertainty


def test_stochastic_pass_gets_the_settings_dropout_and_keeps_it_on_in_eval_mode():
    torch.manual_seed(0)
    predictor = SimpleNamespace(network=tiny_unet(deep_supervision=False))
    settings = ALCConfig(dropout_p=0.5, dropout_placement="lineage", noise_std=0.0, noise_clip=0.0)
    assert make_stochastic(predictor, settings)
    network = predictor.network.network
    assert [(h.p, h.placement) for h in attached_dropout(network)] == [(0.5, "lineage")] * 2
    assert hooked(network.encoder.stages[-1]) and hooked(network.decoder.stages[-1])
    wrapped = predictor.network.eval()  # nnU-Net's sliding window calls .eval()
    assert not any(m.training for m in network.modules())
    x = torch.ones(1, 1, 16, 16, 16)
    assert not torch.equal(wrapped(x), wrapped(x))


def test_stochastic_pass_without_dropout():
    predictor = SimpleNamespace(network=tiny_unet(deep_supervision=False))
    assert not make_stochastic(predictor, ALCConfig(dropout_placement="none", noise_std=0.0))
    x = torch.ones(1, 1, 16, 16, 16)
    assert torch.equal(predictor.network.eval()(x), predictor.network(x))


def test_pass_settings_come_from_the_checkpoint_else_from_checkpoint_final(tmp_path):
    for name in MODEL_FILES:
        (tmp_path / name).write_text("{}")
    (tmp_path / "fold_0").mkdir()
    teacher, student = tmp_path / "fold_0" / TEACHER_CHECKPOINT, tmp_path / "fold_0" / STUDENT_CHECKPOINT
    torch.save({"network_weights": {}}, teacher)
    assert saved_pass_settings(tmp_path, 0, TEACHER_CHECKPOINT) is None  # stock: no "alc"
    config = {**ALCConfig().as_dict(), "dropout_placement": "lineage", "dropout_p": 0.5, "num_passes": 3}
    torch.save({"alc": {"iteration": 2, "config": config}}, student)
    settings = saved_pass_settings(tmp_path, 0, TEACHER_CHECKPOINT)
    assert (settings.dropout_placement, settings.dropout_p, settings.num_passes) == ("lineage", 0.5, 3)
    torch.save({"alc": {"config": {"noise_std": 0.3, "k": 0.7}}}, teacher)  # the chosen checkpoint comes first
    settings = saved_pass_settings(tmp_path, 0, TEACHER_CHECKPOINT)
    assert settings.noise_std == 0.3 and settings.k == 0.5
    assert settings.dropout_placement == ALCConfig().dropout_placement


# ------------------------------------------------------------------ the command on a trained model
@pytest.fixture(scope="module")
def trained(tiny3d, tmp_path_factory):
    """The shared tiny3d dataset and ALC model, and the report of it (m = 3)."""
    model = tiny3d.alc_model
    output = tmp_path_factory.mktemp("report") / "label_report"
    result = run(["nnUNetv2_alc_report", "-m", str(model), "-d", str(DATASET_ID), "-o", str(output),
                  "--num-passes", "3", "--worst", "3", "-device", "cpu"], tiny3d.env)
    return tiny3d.raw, model, output, result.stdout


@pytest.mark.slow
def test_report_csv_is_ranked_and_complete(trained):
    dataset, _, output, stdout = trained
    with open(output / "label_report.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    tags = json.loads((dataset / "dataset.json").read_text())["label_quality"]
    assert sorted(r["case"] for r in rows) == sorted(c for c, q in tags.items() if q == "LQ")
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    keys = [(float(r["dice_given_vs_refined"]), -float(r["uncertainty"])) for r in rows]
    assert keys == sorted(keys)
    assert all(float(r["uncertainty"]) >= 0 and 0 <= float(r["dice_given_vs_refined"]) <= 1 for r in rows)
    assert "Mean Dice to the clean labels" in stdout and "label_report.csv" in stdout


@pytest.mark.slow
def test_refined_labels_have_the_given_labels_geometry(trained):
    dataset, _, output, _ = trained
    with open(output / "label_report.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        refined = sitk.ReadImage(str(output / row["refined_label"]))
        given = sitk.ReadImage(str(dataset / "labelsTr" / f"{row['case']}.nii.gz"))
        assert refined.GetSize() == given.GetSize()
        assert np.allclose(refined.GetSpacing(), given.GetSpacing())
        assert np.allclose(refined.GetOrigin(), given.GetOrigin())
        assert np.allclose(refined.GetDirection(), given.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(refined))) <= {0, 1}


@pytest.mark.slow
def test_worst_cases_and_agreement_png(trained):
    _, _, output, _ = trained
    png = (output / "worst_cases.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (output / agreement.AGREEMENT_PNG).read_bytes()[:8] == png[:8]


def report_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.slow
def test_bad_inputs_end_with_one_line_errors(trained, tmp_path, capsys):
    raw, model, _, _ = trained
    dataset = str(raw)
    out = str(tmp_path / "out")
    assert "does not exist" in report_error(capsys, "-m", str(tmp_path / "nope"), "-d", dataset, "-o", out)
    assert "lacks plans.json" in report_error(capsys, "-m", str(tmp_path), "-d", dataset, "-o", out)
    err = report_error(capsys, "-m", str(model), "-d", dataset, "-o", out, "-f", "3")
    assert "fold_3" in err and "fold_0" in err
    err = report_error(capsys, "-m", str(model), "-d", dataset, "-o", out, "-chk", "checkpoint_missing.pth")
    assert "checkpoint_final_teacher.pth" in err and "checkpoint_final.pth" in err
    all_hq = tmp_path / DATASET
    shutil.copytree(dataset, all_hq)
    content = json.loads((all_hq / "dataset.json").read_text())
    content["label_quality"] = {case: "HQ" for case in content["label_quality"]}
    (all_hq / "dataset.json").write_text(json.dumps(content))
    assert "no training case LQ" in report_error(capsys, "-m", str(model), "-d", str(all_hq), "-o", out)
    del content["label_quality"]
    (all_hq / "dataset.json").write_text(json.dumps(content))
    assert "no 'label_quality' entry" in report_error(capsys, "-m", str(model), "-d", str(all_hq), "-o", out)


def report_on_copy(trained, tmp_path, monkeypatch, alc, **kwargs) -> dict:
    """write_label_report on a copy of the model whose final checkpoints hold ``alc`` (None: none), saved as by
    stock nnU-Net (whose trainer builds the network without dropout); returns its network and m."""
    raw, model, _, _ = trained
    model_copy = tmp_path / model.name
    shutil.copytree(model, model_copy)
    for path in (model_copy / "fold_0").glob("checkpoint_final*.pth"):
        checkpoint = {k: v for k, v in torch.load(path, weights_only=False).items() if k != "alc"}
        torch.save({**checkpoint, "trainer_name": "nnUNetTrainer", **({"alc": alc} if alc else {})}, path)
    seen = {}

    def spy_make_stochastic(predictor, settings):
        seen["network"] = predictor.network
        return make_stochastic(predictor, settings)

    def spy_pass_probabilities(predictor, image_files, num_passes):
        seen["m"] = num_passes
        return passes.pass_probabilities(predictor, image_files, num_passes)

    monkeypatch.setattr(report_run, "make_stochastic", spy_make_stochastic)
    monkeypatch.setattr(report_run, "pass_probabilities", spy_pass_probabilities)
    write_label_report(model_copy, raw, tmp_path / "out", worst=0, show_progress=False, **kwargs)
    return seen


@pytest.mark.slow
def test_report_runs_with_the_saved_dropout_and_m(trained, tmp_path, monkeypatch, capsys):
    assert saved_pass_settings(trained[1], 0, TEACHER_CHECKPOINT).dropout_placement == ALCConfig().dropout_placement
    config = {**ALCConfig().as_dict(), "dropout_placement": "lineage", "dropout_p": 0.5, "num_passes": 2}
    seen = report_on_copy(trained, tmp_path, monkeypatch, {"config": config})
    network = seen["network"]
    assert [(h.p, h.placement, h.forced) for h in attached_dropout(network)] == [(0.5, "lineage", True)] * 2
    assert hooked(network.encoder.stages[-1]) and hooked(network.decoder.stages[-1])
    assert seen["m"] == 2 and "Note" not in capsys.readouterr().out


@pytest.mark.slow
def test_report_without_alc_settings_has_no_dropout_and_says_so(trained, tmp_path, monkeypatch, capsys):
    seen = report_on_copy(trained, tmp_path, monkeypatch, None, num_passes=1)
    assert not has_dropout(seen["network"]) and seen["m"] == 1
    out = capsys.readouterr().out
    assert f"no ALC settings in {TEACHER_CHECKPOINT} or {STUDENT_CHECKPOINT} of fold 0" in out
    assert "differ by their input noise only" in out
