"""ALC on the ResidualEncoderUNet that nnU-Net's ResEnc M planner plans through its own CLI.

Dropout placement, training and prediction, on a copy of the session's tiny 3D dataset (shared_runs.py),
whose fingerprint nnU-Net extracted already.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from shared_runs import TINY3D as DATASET, TINY3D_ID as DATASET_ID, clean_env, run

from nnunetv2_alc.dropout import add_dropout
from nnunetv2_alc.jobs import predict_command
from nnunetv2_alc.tiny_plans import shrink_network

PLANS = "nnUNetResEncUNetMPlans"

# module fixtures on conftest.py's tiny3d: one xdist worker runs the module, building each once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tiny3d_modules")]


@pytest.fixture(scope="module")
def workspace(tiny3d, tmp_path_factory):
    """The tiny dataset planned with ResEnc M and preprocessed for 3d_fullres (network shrunk for the CPU)."""
    root = tmp_path_factory.mktemp("resenc")
    env = clean_env(root)
    tiny3d.copy_dataset(root)  # the preprocessed folder holds nnU-Net's fingerprint of the dataset
    run(["nnUNetv2_plan_experiment", "-d", str(DATASET_ID), "-pl", "nnUNetPlannerResEncM"], env)
    plans_file = root / "preprocessed" / DATASET / f"{PLANS}.json"
    plans = json.loads(plans_file.read_text())
    run(["nnUNetv2_preprocess", "-d", str(DATASET_ID), "-plans_name", PLANS, "-c", "3d_fullres", "-np", "1"], env)
    shrink_network(plans_file, "3d_fullres")
    return root, env, plans


def test_dropout_on_networks_from_resenc_m_plans(workspace):
    _, _, plans = workspace
    for configuration in ("3d_fullres", "2d"):
        architecture = plans["configurations"][configuration]["architecture"]
        assert architecture["network_class_name"].endswith("ResidualEncoderUNet")
        kwargs = architecture["arch_kwargs"]
        # twice the total stride per axis: the bottleneck keeps 2 voxels per axis (instance norm needs > 1)
        size = [2 * math.prod(axis) for axis in zip(*kwargs["strides"])]
        x = torch.randn(1, 1, *size)
        for placement in ("decoder", "lineage"):
            torch.manual_seed(0)
            net = get_network_from_plans(architecture["network_class_name"], kwargs,
                                         architecture["_kw_requires_import"], 1, 2, deep_supervision=True)
            stock = {k: v.clone() for k, v in net.state_dict().items()}
            assert add_dropout(net, 0.5, placement) > 0
            state = net.state_dict()
            assert list(state) == list(stock) and all(torch.equal(state[k], stock[k]) for k in stock)
            with torch.no_grad():
                trained = net.train()(x)[0]
                evaluated = net.eval()(x)[0]
            assert not torch.equal(trained, evaluated), (configuration, placement)


def test_alc_trains_and_predicts_on_resenc_plans(workspace):
    root, env, _ = workspace
    train_env = {**env, "nnUNet_n_proc_DA": "0", "nnUNet_compile": "false", "ALC_NUM_EPOCHS": "1",
                 "ALC_ITERATIONS_PER_EPOCH": "2", "ALC_VAL_ITERATIONS_PER_EPOCH": "1",
                 "ALC_DROPOUT_PLACEMENT": "lineage"}
    run(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", "nnUNetTrainerALC", "-p", PLANS,
         "-device", "cpu"], train_env)
    fold = root / "results" / DATASET / f"nnUNetTrainerALC__{PLANS}__3d_fullres" / "fold_0"
    log = "\n".join(p.read_text() for p in fold.glob("training_log_*.txt"))
    assert "dropout: lineage p=0.1 at 2 points" in log and "ALC: L_hs" in log
    out = root / "predictions"
    images = root / "raw" / DATASET / "imagesTs"
    run(predict_command(images, out, str(DATASET_ID), "3d_fullres", "0", "nnUNetTrainerALC", "cpu", tta=False)
        + ["-p", PLANS], env)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(
        p.name for p in (root / "raw" / DATASET / "labelsTs").glob("*.nii.gz"))
