import numpy as np
import pytest
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunetv2_alc.batch_composition import (HQLQDataLoader, composition_warning, foreground_plan, group_foreground_plan,
                                             local_composition, rank_slice)


def nnunet_ddp_batch_sizes(global_batch, world):
    """nnU-Net's rule in nnUNetTrainer._set_batch_size_and_oversample, restated."""
    sizes = [global_batch // world] * world
    return [s + 1 if s * world + i < global_batch else s for i, s in enumerate(sizes)]


@pytest.mark.parametrize("batch, world", [(2, 1), (2, 2), (5, 2), (24, 4), (7, 3), (3, 3)])
def test_rank_slices_follow_nnunet_and_tile_the_batch(batch, world):
    slices = [rank_slice(batch, world, r) for r in range(world)]
    assert [s.stop - s.start for s in slices] == nnunet_ddp_batch_sizes(batch, world)
    assert slices[0].start == 0 and slices[-1].stop == batch
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))


def test_local_composition_puts_lq_first():
    assert local_composition(4, 20) == (20, 4)
    assert local_composition(1, 1, world_size=2, rank=0) == (1, 0)
    assert local_composition(1, 1, world_size=2, rank=1) == (0, 1)
    per_rank = [local_composition(5, 19, 4, r) for r in range(4)]
    assert sum(lq for lq, _ in per_rank) == 19 and sum(hq for _, hq in per_rank) == 5


@pytest.mark.parametrize("num_hq, num_lq, warned", [(2, 10, "few HQ"), (1, 3, "few HQ"), (4, 20, "few HQ"),
                                                    (0, 1, "few HQ"), (1, 1, "lone HQ"), (1, 2, "lone HQ"),
                                                    (6, 6, None), (2, 3, None), (2, 2, None), (2, 1, None),
                                                    (4, 0, None), (1, 0, None)])
@pytest.mark.parametrize("batch_dice", [True, False])
def test_weak_compositions_are_warned_about(num_hq, num_lq, warned, batch_dice):
    warning = composition_warning(num_hq, num_lq, batch_dice)
    if warned == "lone HQ" and not batch_dice:  # weak only with the Dice over the batch
        warned = None
    assert (warning is not None) == (warned is not None)
    if warned == "few HQ":
        assert f"only {num_hq} of the {num_hq + num_lq} samples" in warning and "ALC_HQ_SHARE=0.5" in warning
    if warned == "lone HQ":
        assert f"{num_hq} HQ + {num_lq} LQ" in warning and "batch_dice" in warning and "batch_size" in warning
        assert "ALC_HQ_SHARE" not in warning and "GPU" not in warning


def test_a_lone_hq_sample_on_one_gpu_is_warned_about():
    """Each GPU computes its own Dice: 2 HQ + 2 LQ on 4 GPUs leaves one HQ sample on two of them."""
    assert composition_warning(2, 2, True) is None
    assert "one sample on some GPU" in composition_warning(2, 2, True, world_size=4)
    assert composition_warning(2, 2, True, world_size=2) is None  # [LQ, LQ] and [HQ, HQ]
    assert composition_warning(2, 2, False, world_size=4) is None


class Identifiers:
    """Only what nnUNetDataLoader reads at construction time: the case identifiers."""

    def __init__(self, identifiers):
        self.identifiers = identifiers


def make_loader(num_lq, batch_size=6, hq=("h1", "h2"), lq=("l1", "l2", "l3"), plan=None):
    labels = LabelManager({"background": 0, "target": 1}, regions_class_order=None)
    plan = foreground_plan(batch_size - num_lq, num_lq, 0.33) if plan is None else plan
    return HQLQDataLoader(Identifiers(list(hq) + list(lq)), batch_size, (8, 8, 8), (8, 8, 8), labels,
                          hq_keys=list(hq), lq_keys=list(lq), num_lq=num_lq, plan=plan,
                          oversample_foreground_percent=0.33)


def nnunet_forced(batch_size, percent=0.33):
    """nnU-Net's rule (nnUNetDataLoader._oversample_last_XX_percent), restated, for one group."""
    return [not j < round(batch_size * (1 - percent)) for j in range(batch_size)]


def test_batches_hold_lq_then_hq_cases():
    np.random.seed(0)
    loader = make_loader(num_lq=4)
    seen = set()
    for _ in range(50):
        keys = loader.get_indices()
        assert len(keys) == 6
        assert all(k.startswith("l") for k in keys[:4]) and all(k.startswith("h") for k in keys[4:])
        seen.update(keys)
    assert seen == {"h1", "h2", "l1", "l2", "l3"}


@pytest.mark.parametrize("num_lq, num_hq", [(10, 2), (20, 4), (1, 1), (3, 1), (2, 2), (5, 0), (0, 6), (19, 5)])
def test_foreground_is_forced_within_each_group_at_nnunets_rate(num_lq, num_hq):
    np.random.seed(0)
    draws = 3000
    loader = make_loader(num_lq, batch_size=num_lq + num_hq)
    forced = np.array([[loader.get_do_oversample(j) for j in range(num_lq + num_hq)] for _ in range(draws)])
    for size, columns in ((num_lq, forced[:, :num_lq]), (num_hq, forced[:, num_lq:])):
        if size == 0:
            continue
        if size == 1:  # a lone sample: forced with probability 0.33
            assert abs(columns.mean() - 0.33) < 0.03
        else:  # every draw forces exactly nnU-Net's count, at nnU-Net's positions within the group
            assert (columns == np.array(nnunet_forced(size))).all()
            assert 0 < columns[0].sum() < size  # background-only patches in every group, also HQ
    if num_lq == 10 and num_hq == 2:  # batch 12: 3 of 10 LQ and 1 of 2 HQ patches (nnU-Net over the batch: 2 + 2)
        assert forced[0, :10].sum() == 3 and forced[0, 10:].sum() == 1


@pytest.mark.parametrize("num_lq, num_hq, world", [(10, 2, 2), (6, 2, 4), (1, 1, 2), (19, 5, 3)])
def test_ddp_ranks_tile_the_global_plan(num_lq, num_hq, world):
    whole = foreground_plan(num_hq, num_lq, 0.33)
    tiled = [p for rank in range(world) for p in foreground_plan(num_hq, num_lq, 0.33, world_size=world, rank=rank)]
    assert tiled == whole
    assert whole == group_foreground_plan(num_lq, 0.33) + group_foreground_plan(num_hq, 0.33)


def test_probabilistic_oversampling_leaves_every_position_to_chance():
    assert foreground_plan(2, 10, 0.33, probabilistic=True) == [None] * 12
    assert group_foreground_plan(1, 0.33) == [None] and group_foreground_plan(0, 0.33) == []


def test_plan_must_fit_the_batch():
    with pytest.raises(ValueError, match="foreground plan has 3 positions"):
        make_loader(num_lq=1, batch_size=2, plan=[True, False, True])


def test_missing_group_is_refused():
    with pytest.raises(ValueError, match="no HQ cases"):
        make_loader(num_lq=1, batch_size=2, hq=())
    with pytest.raises(ValueError, match="no LQ cases"):
        make_loader(num_lq=1, batch_size=2, lq=())
    with pytest.raises(ValueError, match="must lie in"):
        make_loader(num_lq=3, batch_size=2)
