"""Fails when nnU-Net changes code that nnUNetTrainerALC still repeats or configures by name.

nnUNetTrainerALC calls nnU-Net's own methods wherever nnU-Net offers a hook. Two methods have none and
are re-listed in ours: ``get_dataloaders`` (the loader class is not a parameter) and the optimizer step of
``train_step`` (the loss of Eq. 11 needs the batch's HQ/LQ split). Their nnU-Net source is pinned here
by a hash of its syntax tree (comments and formatting do not count). When a test fails after an nnU-Net
upgrade: read nnU-Net's new version, carry the change into ``nnunetv2_alc/trainers/nnUNetTrainerALC.py``,
run the suite, then put the new hash here and raise the upper bound of ``nnunetv2`` in pyproject.toml.
"""

import ast
import hashlib
import inspect
import textwrap

import pytest
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC

# nnunetv2 2.8.1
REPEATED = {"get_dataloaders": "60d490ab8af991f9", "train_step": "c8a2e3ad9b270e19"}
CHECKPOINT_KEYS = {"network_weights", "optimizer_state", "grad_scaler_state", "logging", "_best_ema", "current_epoch",
                   "init_args", "trainer_name", "inference_allowed_mirroring_axes"}


def syntax_tree(function) -> ast.Module:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


@pytest.mark.parametrize("name", sorted(REPEATED))
def test_repeated_nnunet_method_is_unchanged(name):
    digest = hashlib.sha256(ast.dump(syntax_tree(getattr(nnUNetTrainer, name))).encode()).hexdigest()[:16]
    assert digest == REPEATED[name], (
        f"nnUNetTrainer.{name} changed in this nnunetv2 (hash {digest}, pinned {REPEATED[name]}): "
        f"nnUNetTrainerALC.{name} repeats it; see this file's docstring for what to do.")


def test_nnunet_checkpoint_keys_are_the_known_ones():
    """nnU-Net's ``save_checkpoint`` writes these keys; ours adds ``alc`` and swaps ``network_weights`` for the
    teacher file, and the report reads ``init_args``/``trainer_name``."""
    literals = [node for node in ast.walk(syntax_tree(nnUNetTrainer.save_checkpoint)) if isinstance(node, ast.Dict)]
    keys = {key.value for node in literals for key in node.keys if isinstance(key, ast.Constant)}
    assert keys == CHECKPOINT_KEYS, f"nnU-Net's checkpoint keys changed: {sorted(keys ^ CHECKPOINT_KEYS)}"


def test_alc_calls_nnunet_checkpoint_methods():
    for name in ("save_checkpoint", "load_checkpoint"):
        calls = [node for node in ast.walk(syntax_tree(getattr(nnUNetTrainerALC, name)))
                 if isinstance(node, ast.Attribute) and node.attr == name
                 and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "super"]
        assert calls, f"nnUNetTrainerALC.{name} must call nnU-Net's (super().{name})"


def test_loss_attributes_that_alc_sets_exist():
    """``nnUNetTrainerALC._build_loss`` sets these by name (and fails loudly when one is missing)."""
    loss = DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, weight_ce=1,
                          weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    for owner, name in ((loss, "weight_ce"), (loss, "weight_dice"), (loss.dc, "ddp")):
        assert hasattr(owner, name), f"nnU-Net's {type(owner).__name__} has no attribute {name!r} any more"
