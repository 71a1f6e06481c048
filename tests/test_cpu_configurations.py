"""CPU-budget configurations added to nnU-Net's plans (tiny_plans.add_configuration, benchmarks/la_prepare.py)."""

from __future__ import annotations

import json
import runpy
import sys

import la_prepare  # benchmarks/, on sys.path through conftest.py
import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from conversion_fixtures import nnunet_env, write_la_h5  # noqa: F401 (nnunet_env: a fixture)
from nnunetv2_alc.tiny_plans import add_configuration
from shared_runs import BENCHMARKS


def configuration(spacing, patch, median, conv, norm) -> dict:
    """A planned configuration as nnU-Net writes it (the keys its trainers and preprocessors read)."""
    dims = len(patch)
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    return {
        "data_identifier": f"nnUNetPlans_{dims}d", "preprocessor_name": "DefaultPreprocessor", "batch_size": 2,
        "patch_size": patch, "median_image_size_in_voxels": median, "spacing": spacing,
        "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": resampling, "resampling_fn_seg_kwargs": dict(resampling, is_seg=True, order=1),
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": dict(resampling, order=1), "batch_dice": True,
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {"n_stages": 5, "features_per_stage": [32, 64, 128, 256, 320], "conv_op": conv,
                            "kernel_sizes": [[3] * dims] * 5, "strides": [[1] * dims] + [[2] * dims] * 4,
                            "n_conv_per_stage": [2] * 5, "n_conv_per_stage_decoder": [2] * 4, "conv_bias": True,
                            "norm_op": norm, "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                            "nonlin_kwargs": {"inplace": True}},
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
    }


@pytest.fixture
def plans_file(tmp_path):
    plans = {"dataset_name": "Dataset001_X", "plans_name": "nnUNetPlans", "transpose_forward": [0, 1, 2],
             "transpose_backward": [0, 1, 2], "image_reader_writer": "SimpleITKIO",
             "original_median_spacing_after_transp": [0.625] * 3, "original_median_shape_after_transp": [88, 142, 190],
             "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
             "foreground_intensity_properties_per_channel": {},
             "configurations": {
                 "2d": configuration([0.625] * 2, [160, 192], [142.5, 189.5], "torch.nn.modules.conv.Conv2d",
                                     "torch.nn.modules.instancenorm.InstanceNorm2d"),
                 "3d_fullres": configuration([0.625] * 3, [96, 128, 192], [88, 142.5, 189.5],
                                             "torch.nn.modules.conv.Conv3d",
                                             "torch.nn.modules.instancenorm.InstanceNorm3d")}}
    path = tmp_path / "nnUNetPlans.json"
    path.write_text(json.dumps(plans))
    return path


@pytest.mark.parametrize("base, spacing, patch", [("2d", [1.5], [64, 80]),
                                                  ("3d_fullres", [2.5, 2.0, 2.0], [24, 40, 48])])
def test_added_configuration_is_what_nnunet_reads_and_builds(plans_file, base, spacing, patch):
    plans = json.loads(plans_file.read_text())
    plans["configurations"][base]["next_stage"] = "3d_cascade_fullres"  # a lowres base: the copy is no cascade stage
    plans_file.write_text(json.dumps(plans))
    before = json.loads(plans_file.read_text())["configurations"][base]
    add_configuration(plans_file, "cpu", base, spacing, patch, 4, 8, 32, 12)
    manager = PlansManager(str(plans_file)).get_configuration("cpu")
    expected_spacing = spacing * len(patch) if len(spacing) == 1 else spacing
    assert (manager.patch_size, manager.spacing, manager.batch_size) == (patch, expected_spacing, 12)
    assert manager.data_identifier == "nnUNetPlans_cpu" and manager.next_stage_names is None
    assert manager.network_arch_init_kwargs["features_per_stage"] == [8, 16, 32, 32]
    # the median size follows the spacing: 0.625 mm -> s mm divides the voxel count by s / 0.625
    assert manager.median_image_size_in_voxels == pytest.approx(
        [m * 0.625 / s for m, s in zip(before["median_image_size_in_voxels"], expected_spacing)])
    network = get_network_from_plans(manager.network_arch_class_name, manager.network_arch_init_kwargs,
                                     manager.network_arch_init_kwargs_req_import, 1, 2, deep_supervision=True)
    with torch.no_grad():
        outputs = network(torch.zeros(1, 1, *patch))
    assert [tuple(o.shape[2:]) for o in outputs] == [tuple(p // 2 ** s for p in patch) for s in range(3)]
    assert json.loads(plans_file.read_text())["configurations"][base] == before  # the base is left alone


@pytest.mark.parametrize("name, base, spacing, patch, stages, error, message", [
    ("cpu", "3d_lowres", [1.5], [64, 80], 4, KeyError, "no configuration '3d_lowres' to start from; planned: "),
    ("2d", "2d", [1.5], [64, 80], 4, ValueError, "already has a configuration '2d'"),
    ("cpu", "2d", [1.5], [60, 80], 4, ValueError, r"patch size \[60, 80\] must be divisible by 8"),
    ("cpu", "2d", [1.5, 1.5, 1.5], [64, 80], 4, ValueError, "is 2d: give 1 or 2 spacing values"),
    ("cpu", "2d", [0.0], [64, 80], 4, ValueError, "need spacing > 0"),
    ("cpu", "2d", [1.5], [64, 80], 1, ValueError, "n_stages >= 2"),
    ("cpu", "inherited", [1.5], [64, 80], 4, ValueError, "'inherited' of .* inherits from another"),
    ("cpu", "resenc", [1.5], [64, 80], 4, ValueError, "builds .*ResidualEncoderUNet; add_configuration writes a "),
])
def test_bad_configuration_is_refused_and_plans_stay(plans_file, name, base, spacing, patch, stages, error, message):
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["inherited"] = {"inherits_from": "2d", "batch_size": 4}
    resenc = plans["configurations"]["resenc"] = json.loads(json.dumps(plans["configurations"]["2d"]))
    resenc["architecture"]["network_class_name"] = "dynamic_network_architectures.architectures.unet." \
                                                   "ResidualEncoderUNet"
    plans_file.write_text(json.dumps(plans))
    before = plans_file.read_text()
    with pytest.raises(error, match=message):
        add_configuration(plans_file, name, base, spacing, patch, stages, 8, 64, 12)
    assert plans_file.read_text() == before


@pytest.mark.parametrize("change", [None, "split", "tags"])
def test_the_milder_twin_must_have_the_development_split_and_tags(tmp_path, change):
    def dataset(name, train, tags):
        (tmp_path / name).mkdir()
        (tmp_path / name / "split.json").write_text(json.dumps({"train": train, "test": ["v"], "source": name}))
        (tmp_path / name / "dataset.json").write_text(json.dumps({"label_quality": tags}))
        return tmp_path / name
    development = dataset("Dataset001_D", ["a", "b"], {"a": "HQ", "b": "LQ"})
    twin = dataset("Dataset002_M", ["b", "c"] if change == "split" else ["b", "a"],
                   {"a": "LQ", "b": "HQ"} if change == "tags" else {"a": "HQ", "b": "LQ"})
    if change is None:
        la_prepare.require_same_split(development, twin)
    else:
        with pytest.raises(SystemExit, match="Dataset002_M has other cases or HQ tags than Dataset001_D"):
            la_prepare.require_same_split(development, twin)


def test_held_out_check_refuses_a_development_case_that_is_a_test_case(tmp_path):
    def dataset(name, train, test):
        (tmp_path / name).mkdir()
        (tmp_path / name / "split.json").write_text(json.dumps({"train": train, "test": test}))
        return tmp_path / name
    test = dataset("Dataset001_T", ["a", "b", "c", "d"], ["x", "y"])
    good = dataset("Dataset002_D", ["a", "b", "c"], ["d"])
    twin = dataset("Dataset004_H", ["a", "c", "b", "d"], ["y", "x"])
    la_prepare.check_held_out(test, [good], [twin])
    with pytest.raises(SystemExit, match="Dataset003_L holds 1 case.*first: x"):
        la_prepare.check_held_out(test, [good, dataset("Dataset003_L", ["a", "b"], ["x"])], [twin])
    with pytest.raises(SystemExit, match="Dataset005_O has other test cases"):
        la_prepare.check_held_out(test, [good], [dataset("Dataset005_O", ["a", "b", "c", "x"], ["d", "y"])])


def test_preprocessed_data_is_stale_until_stamped_and_again_after_a_change(plans_file):
    add_configuration(plans_file, "2d_cpu", "2d", [1.5], [64, 80], 4, 8, 64, 12)
    assert la_prepare.is_stale(plans_file, "2d_cpu")  # no stamp, no data
    (plans_file.parent / "nnUNetPlans_2d_cpu").mkdir()
    (plans_file.parent / "nnUNetPlans_2d_cpu" / "a.pkl").write_bytes(b"")
    la_prepare.write_stamp(plans_file, "2d_cpu")
    assert not la_prepare.is_stale(plans_file, "2d_cpu")
    add_configuration(plans_file, "2d_cpu", "2d", [2.0], [64, 80], 4, 8, 64, 12, overwrite=True)
    assert la_prepare.is_stale(plans_file, "2d_cpu")  # another spacing: preprocess again
    la_prepare.write_stamp(plans_file, "2d_cpu")
    (plans_file.parent / "nnUNetPlans_2d_cpu" / "a.pkl").unlink()
    assert la_prepare.is_stale(plans_file, "2d_cpu")  # the data is gone


def test_la_prepare_refuses_a_folder_without_la_cases(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed"):
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setattr(sys, "argv", ["la_prepare.py", "--data", str(tmp_path / "nothing"), "--test-id", "1",
                                      "--dev-id", "2", "--work", str(tmp_path / "work")])
    with pytest.raises(SystemExit, match="has no '2018LA_Seg_Training Set' folder"):
        runpy.run_path(str(BENCHMARKS / "la_prepare.py"), run_name="__main__")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_la_prepare_makes_a_development_split_of_training_cases_and_a_cpu_configuration(tmp_path, nnunet_env,
                                                                                         monkeypatch, capsys):
    data = write_la_h5(tmp_path / "la", [f"CASE{i:02d}" for i in range(12)])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")  # set for CPU training; nnU-Net's planner refuses it
    # in this process (the converters, nnU-Net's planning and preprocessing still run as its subprocesses)
    monkeypatch.setattr(sys, "argv", ["la_prepare.py", "--data", str(data), "--test-id", "611", "--dev-id", "612",
                                      "--ceiling-id", "613", "--configurations", "2d_cpu",
                                      "--work", str(tmp_path / "work")])
    runpy.run_path(str(BENCHMARKS / "la_prepare.py"), run_name="__main__")
    assert "preprocess 2d_cpu: done" in capsys.readouterr().out
    raw, preprocessed = tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed"
    test, development = (json.loads((raw / f"Dataset{i}_LeftAtrium" / "split.json").read_text()) for i in (611, 612))
    assert set(development["train"]) | set(development["test"]) == set(test["train"])  # test cases never enter
    tags = [json.loads((raw / f"Dataset{i}_LeftAtrium" / "dataset.json").read_text())["label_quality"]
            for i in (611, 612)]
    assert sum(v == "HQ" for v in tags[0].values()) == sum(v == "HQ" for v in tags[1].values()) == 1
    ceiling = json.loads((raw / "Dataset613_LeftAtriumClean" / "dataset.json").read_text())["label_quality"]
    assert set(ceiling) == set(test["train"]) and set(ceiling.values()) == {"HQ"}
    for dataset_id, cases in ((611, test["train"]), (612, development["train"]), (613, test["train"])):
        folder = next(preprocessed.glob(f"Dataset{dataset_id}_LeftAtrium*"))
        assert (raw / folder.name / "noise_manifest.json").is_file() == (dataset_id != 613)
        plans = PlansManager(str(folder / "nnUNetPlans.json"))
        main, twin = plans.get_configuration("2d_cpu"), plans.get_configuration("2d_cpu_b2")
        assert (main.batch_size, twin.batch_size, main.spacing) == (12, 2, [1.5, 1.5])
        assert main.data_identifier == twin.data_identifier == "nnUNetPlans_2d_cpu"
        assert sorted(p.name.split(".")[0] for p in (folder / "nnUNetPlans_2d_cpu").glob("*.pkl")) == sorted(cases)
    runpy.run_path(str(BENCHMARKS / "la_prepare.py"), run_name="__main__")
    again = capsys.readouterr().out
    assert "done in" not in again and "Prepared: Dataset611_LeftAtrium" in again, again  # nothing is made twice
