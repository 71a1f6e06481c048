"""The trainer variants as classes: what LQ samples learn from, and flags checked when a class is defined."""

from __future__ import annotations

import pytest
import torch

from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC
from nnunetv2_alc.trainers.nnUNetTrainerALC_noLR import nnUNetTrainerALC_noLR
from nnunetv2_alc.trainers.nnUNetTrainerALC_noLS import nnUNetTrainerALC_noLS
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


def test_flags_are_checked_when_a_variant_is_defined():
    with pytest.raises(TypeError, match="select_lq='no'"):
        type("nnUNetTrainerBad", (nnUNetTrainerALC,), {"select_lq": "no"})
    with pytest.raises(TypeError, match=r"unknown ALC settings \['kappa'\]"):
        type("nnUNetTrainerBad", (nnUNetTrainerALC,), {"config_defaults": {"kappa": 1}})
    with pytest.raises(TypeError, match="unknown ALC settings"):
        type("nnUNetTrainerBadStock", (nnUNetTrainerStock,), {"config_defaults": {"num_pases": 2}})
    good = type("nnUNetTrainerGood", (nnUNetTrainerALC,), {"config_defaults": {"k": 0.25}})
    assert good.config_defaults == {"k": 0.25}
