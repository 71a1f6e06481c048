"""ALC on the ResidualEncoderUNet that nnU-Net's ResEnc M planner plans through its own CLI.

Dropout placement, training and prediction.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from test_end_to_end import run

from nnunetv2_alc.dropout import add_dropout
from nnunetv2_alc.tiny_plans import shrink_network

DATASET_ID = 936
DATASET = f"Dataset{DATASET_ID}_SyntheticTiny3D"
PLANS = "nnUNetResEncUNetMPlans"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny dataset planned with ResEnc M and preprocessed for 3d_fullres (network shrunk for the CPU)."""
    root = tmp_path_factory.mktemp("resenc")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALC_", "nnUNet"))}
    env.update(nnUNet_raw=str(root / "raw"), nnUNet_preprocessed=str(root / "preprocessed"),
               nnUNet_results=str(root / "results"), OMP_NUM_THREADS="1", nnUNet_def_n_proc="1")
    run(["nnUNetv2_alc_synthetic", "-d", str(DATASET_ID), "--kind", "tiny3d", "--seed", "3"], env)
    run(["nnUNetv2_extract_fingerprint", "-d", str(DATASET_ID), "-np", "1"], env)
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
    run(["nnUNetv2_predict", "-i", str(root / "raw" / DATASET / "imagesTs"), "-o", str(out), "-d", str(DATASET_ID),
         "-c", "3d_fullres", "-f", "0", "-tr", "nnUNetTrainerALC", "-p", PLANS, "-device", "cpu", "-npp", "1",
         "-nps", "1", "--disable_tta"], env)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(
        p.name for p in (root / "raw" / DATASET / "labelsTs").glob("*.nii.gz"))
