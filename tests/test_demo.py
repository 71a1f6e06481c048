"""nnUNetv2_alc_demo: argument and work-folder checks, then the whole demo with the smallest schedule."""

from __future__ import annotations

import os
import subprocess

import pytest

from nnunetv2_alc.demo import DemoSettings, main
from nnunetv2_alc.demo.pipeline import check_settings
from nnunetv2_alc.demo.workspace import Workspace
from nnunetv2_alc.input_errors import InputDataError


def test_non_empty_work_folder_needs_overwrite(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["-o", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is not empty" in capsys.readouterr().err and os.listdir(tmp_path) == ["keep.txt"]
    work = Workspace(tmp_path)
    work.prepare(overwrite=True)
    (work.logs / "old.log").write_text("old")
    work.prepare(overwrite=True)  # the demo's folders are emptied, other files stay
    assert not (work.logs / "old.log").exists() and (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("change, message", [
    ({"trainers": ("nnUNetTrainerHLSup",)}, "must include nnUNetTrainerALC"),
    ({"kind": "tiny2d"}, "3D preset"),
    ({"epochs": 0}, "--epochs"),
])
def test_bad_settings_are_refused(tmp_path, change, message):
    with pytest.raises(InputDataError, match=message):
        check_settings(DemoSettings(root=tmp_path, **change))


def test_environment_points_nnunet_into_the_work_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_results", "/elsewhere")
    monkeypatch.setenv("nnUNet_n_proc_DA", "12")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    env = Workspace(tmp_path).environment(cpu=True)
    assert env["nnUNet_results"] == str(tmp_path / "nnUNet_results") and "nnUNet_n_proc_DA" not in env
    assert env["nnUNet_compile"] == "false" and env["nnUNet_def_n_proc"] == str(os.cpu_count())
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    work = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALC_")}
    result = subprocess.run(["nnUNetv2_alc_demo", "-o", str(work), "--epochs", "1", "--iterations", "2",
                             "--trainers", "nnUNetTrainerALC"],  # one trainer: CI's time budget
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    table = (work / "evaluation" / "comparison.md").read_text()
    assert "| ALC (ours) |" in table and "Dice [%]" in table
    assert table.strip() in result.stdout.replace("\r", "")
    for path in ("label_report/label_report.csv", "label_report/worst_cases.png", "logs/train_nnUNetTrainerALC.log"):
        assert (work / path).exists(), path
    assert len(list((work / "predictions" / "nnUNetTrainerALC").glob("*.nii.gz"))) == 10
    assert "Done in" in result.stdout and str(work / "evaluation" / "comparison.md") in result.stdout
    for step in range(1, 8):
        assert f"[{step}/7]" in result.stdout
