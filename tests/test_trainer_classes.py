"""The trainer variants as classes: what LQ samples learn from, and flags checked when a class is defined."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from nnunetv2_alc.batch_composition import foreground_plan
from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC
from nnunetv2_alc.trainers.nnUNetTrainerALC_hqforced import nnUNetTrainerALC_hqforced
from nnunetv2_alc.trainers.nnUNetTrainerALC_noLR import nnUNetTrainerALC_noLR
from nnunetv2_alc.trainers.nnUNetTrainerALC_noLS import nnUNetTrainerALC_noLS
from nnunetv2_alc.trainers.nnUNetTrainerALC_oracle import nnUNetTrainerALC_oracle
from nnunetv2_alc.trainers.nnUNetTrainerHSup import nnUNetTrainerHSup
from nnunetv2_alc.trainers.nnUNetTrainerHSup_sampleDice import nnUNetTrainerHSup_sampleDice
from nnunetv2_alc.trainers.nnUNetTrainerMeanTeacher import nnUNetTrainerMeanTeacher
from nnunetv2_alc.trainers.nnUNetTrainerStock import nnUNetTrainerStock


def passes_where_refined_and_pseudo_differ() -> TeacherPasses:
    # three passes say [0.4, 0.6], one saturated pass says [1, 0]: the mean picks class 0, the KL weights class 1
    probs = torch.tensor([[0.4, 0.6]] * 3 + [[1.0, 0.0]]).reshape(4, 1, 2, 1, 1)
    passes = TeacherPasses(probs)
    assert not torch.equal(passes.refined, passes.pseudo)
    return passes


@pytest.mark.parametrize("trainer, expected", [(nnUNetTrainerALC, "refined"), (nnUNetTrainerALC_noLS, "refined"),
                                               (nnUNetTrainerALC_noLR, "pseudo"), (nnUNetTrainerMeanTeacher, None)])
def test_what_lq_samples_learn_from(trainer, expected):
    passes = passes_where_refined_and_pseudo_differ()
    labels = trainer.corrected_labels(None, passes)  # depends on the passes only
    if expected is None:
        assert labels is None
    else:
        assert torch.equal(labels, getattr(passes, expected))


def test_oracle_trains_selected_lq_samples_on_clean_and_the_rest_on_noisy_labels():
    """_loss_terms of the oracle: L_ls on the clean labels of the selected LQ samples, L_n on the others' noisy ones."""
    rng = torch.Generator().manual_seed(0)
    output = torch.randn(3, 2, 4, 4, generator=rng)  # samples 0, 1 LQ, sample 2 HQ
    noisy = torch.randint(0, 2, (3, 1, 4, 4), generator=rng)
    clean = 1 - noisy[:2, 0]  # every voxel differs from the noisy label
    seen = []
    trainer = SimpleNamespace(
        lq_clean_labels=clean, teacher=object(), global_num_hq=1, global_num_lq=2, device="cpu", _world=lambda: (1, 0),
        _select=lambda uncertainty: (torch.tensor([True, False]), 1),
        loss=lambda out, target: seen.append((out.clone(), target.clone())) or out.sum())
    trainer.corrected_labels = lambda passes: nnUNetTrainerALC_oracle.corrected_labels(trainer, passes)
    passes = TeacherPasses(torch.softmax(torch.randn(4, 2, 2, 4, 4, generator=rng), dim=2))
    terms = nnUNetTrainerALC._loss_terms(trainer, output, noisy, torch.tensor([2]), torch.tensor([0, 1]), passes)
    (hq_out, hq_target), (ls_out, ls_target), (n_out, n_target) = seen
    assert torch.equal(hq_target, noisy[2:]) and torch.equal(ls_target[:, 0].long(), clean[:1])
    assert torch.equal(n_target, noisy[1:2]) and torch.equal(ls_out, output[:1]) and torch.equal(n_out, output[1:2])
    assert terms["num_selected"] == 1
    trainer.lq_clean_labels = None
    with pytest.raises(RuntimeError, match="no clean labels reached this training step"):
        nnUNetTrainerALC._loss_terms(trainer, output, noisy, torch.tensor([2]), torch.tensor([0, 1]), passes)


def test_oracle_refuses_a_dataset_without_clean_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    (tmp_path / "Dataset001_X" / "labelsTr_clean").mkdir(parents=True)
    (tmp_path / "Dataset001_X" / "labelsTr_clean" / "a.nii.gz").write_bytes(b"")
    trainer = SimpleNamespace(label_quality={"a": "LQ", "b": "LQ", "h": "HQ"}, dataset_json={"file_ending": ".nii.gz"},
                              plans_manager=SimpleNamespace(dataset_name="Dataset001_X"), is_cascaded=False,
                              global_num_lq=2, needs_clean_labels=nnUNetTrainerALC_oracle.needs_clean_labels)
    with pytest.raises(FileNotFoundError, match=r"1 LQ case\(s\) have none in .*Dataset001_X/labelsTr_clean.*first: b"):
        nnUNetTrainerALC_oracle._clean_label_folder(trainer, ["a", "b", "h"])


def test_flags_are_checked_when_a_variant_is_defined():
    with pytest.raises(TypeError, match="select_lq='no'"):
        type("nnUNetTrainerBad", (nnUNetTrainerALC,), {"select_lq": "no"})
    with pytest.raises(TypeError, match=r"unknown ALC settings \['kappa'\]"):
        type("nnUNetTrainerBad", (nnUNetTrainerALC,), {"config_defaults": {"kappa": 1}})
    with pytest.raises(TypeError, match="unknown ALC settings"):
        type("nnUNetTrainerBadStock", (nnUNetTrainerStock,), {"config_defaults": {"num_pases": 2}})
    good = type("nnUNetTrainerGood", (nnUNetTrainerALC,), {"config_defaults": {"k": 0.25}})
    assert good.config_defaults == {"k": 0.25}


@pytest.mark.parametrize("global_num_lq, expected", [(0, (6, 6)), (10, (2, 10))])
def test_validation_batches_follow_the_share_only_for_trainers_with_lq_samples(global_num_lq, expected):
    """H-Sup and HL-Sup (no LQ group in training) validate at the default share, whatever ALC_HQ_SHARE says."""
    keys = ["h0", "h1", "l0", "l1", "l2"]
    trainer = SimpleNamespace(label_quality={k: "HQ" if k[0] == "h" else "LQ" for k in keys}, fold="all",
                              configuration_manager=SimpleNamespace(batch_size=12), global_num_lq=global_num_lq,
                              alc=ALCConfig(hq_share=1 / 6), print_to_log_file=lambda *a, **k: None)
    hq, lq, num_hq, num_lq = nnUNetTrainerALC._validation_composition(trainer, keys)
    assert (hq, lq, (num_hq, num_lq)) == (["h0", "h1"], ["l0", "l1", "l2"], expected)
    assert trainer.select_on_hq


def batch_dice_loss() -> DeepSupervisionWrapper:
    """nnU-Net's Dice+CE as its 2d configurations build it (batch Dice), one deep-supervision scale."""
    return DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False},
                                                 {}, weight_ce=1, weight_dice=1, ignore_label=None,
                                                 dice_class=MemoryEfficientSoftDiceLoss), [1.0])


def test_sample_dice_variant_averages_the_loss_of_each_sample(monkeypatch):
    """The diagnostic H-Sup's loss is nnU-Net's Dice+CE of each sample on its own, averaged: no batch Dice."""
    monkeypatch.setattr(nnUNetTrainerHSup, "_build_loss", lambda self: batch_dice_loss())
    loss = nnUNetTrainerHSup_sampleDice._build_loss(object.__new__(nnUNetTrainerHSup_sampleDice))
    rng = torch.Generator().manual_seed(0)
    output = torch.randn(2, 2, 6, 6, generator=rng, dtype=torch.float64)
    target = torch.zeros(2, 1, 6, 6, dtype=torch.float64)
    target[1, 0, 1:4, 2:5] = 1  # sample 0 holds no foreground
    per_sample = torch.stack([loss([output[i:i + 1]], [target[i:i + 1]]) for i in range(2)]).mean()
    assert torch.allclose(loss([output], [target]), per_sample)
    assert not torch.allclose(batch_dice_loss()([output], [target]), per_sample)


@pytest.mark.parametrize("num_hq, num_lq, world, rank, expected", [
    (1, 1, 1, 0, [None, True]), (2, 2, 1, 0, [False, True, False, True]), (1, 2, 1, 0, [False, True, None]),
    (1, 1, 2, 0, [None]), (1, 1, 2, 1, [True])])
def test_hq_forced_variant_forces_a_lone_hq_sample_only(monkeypatch, num_hq, num_lq, world, rank, expected):
    planned = foreground_plan(num_hq, num_lq, 0.33, world_size=world, rank=rank)
    monkeypatch.setattr(nnUNetTrainerALC, "_composed_loader", lambda self, *args: SimpleNamespace(plan=list(planned)))
    trainer = object.__new__(nnUNetTrainerALC_hqforced)
    trainer._world = lambda: (world, rank)
    loader = nnUNetTrainerALC_hqforced._composed_loader(trainer, None, None, [], [], num_hq, num_lq, None)
    assert loader.plan == expected
