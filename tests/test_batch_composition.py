import numpy as np
import pytest
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunetv2_alc.batch_composition import HQLQDataLoader, local_composition, rank_slice


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


class Identifiers:
    """Only what nnUNetDataLoader reads at construction time: the case identifiers."""

    def __init__(self, identifiers):
        self.identifiers = identifiers


def make_loader(num_lq, batch_size=6, hq=("h1", "h2"), lq=("l1", "l2", "l3")):
    labels = LabelManager({"background": 0, "target": 1}, regions_class_order=None)
    return HQLQDataLoader(Identifiers(list(hq) + list(lq)), batch_size, (8, 8, 8), (8, 8, 8), labels,
                          hq_keys=list(hq), lq_keys=list(lq), num_lq=num_lq, oversample_foreground_percent=0.33)


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


def test_oversampled_positions_include_the_hq_sample_of_a_batch_of_two():
    loader = make_loader(num_lq=1, batch_size=2)
    assert [loader.get_do_oversample(j) for j in range(2)] == [False, True]


def test_missing_group_is_refused():
    with pytest.raises(ValueError, match="no HQ training cases"):
        make_loader(num_lq=1, batch_size=2, hq=())
    with pytest.raises(ValueError, match="no LQ training cases"):
        make_loader(num_lq=1, batch_size=2, lq=())
    with pytest.raises(ValueError, match="must lie in"):
        make_loader(num_lq=3, batch_size=2)
