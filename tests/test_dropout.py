import copy

import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from dynamic_network_architectures.building_blocks.residual import BottleneckD
from torch import nn

from nnunetv2_alc.dropout import ChannelDropout, add_dropout, attached_dropout, enable_dropout_only, has_dropout

PLACEMENTS = ("decoder", "lineage", "all", "none")
# hook points per placement: plain 6 encoder + 4 decoder blocks; resenc stem + 2 * 5 residual convs + 2 decoder blocks
EXPECTED = {"plain": {"decoder": 4, "lineage": 2, "all": 10, "none": 0},
            "resenc": {"decoder": 2, "lineage": 2, "all": 13, "none": 0}}


def ops(dim):
    return (nn.Conv3d, nn.InstanceNorm3d) if dim == 3 else (nn.Conv2d, nn.InstanceNorm2d)


def tiny_unet(dim=3, dropout_op=None, deep_supervision=True):
    conv, norm = ops(dim)
    return PlainConvUNet(1, 3, (4, 8, 16), conv, 3, (1, 2, 2), 2, 2, (2, 2), True, norm, {"affine": True},
                         dropout_op, {"p": 0.3} if dropout_op else None, nn.LeakyReLU, {"inplace": True},
                         deep_supervision=deep_supervision)


def tiny_resenc(dim=3, dropout_op=None, deep_supervision=True, **block):
    conv, norm = ops(dim)
    return ResidualEncoderUNet(1, 3, (4, 8, 16), conv, 3, (1, 2, 2), (1, 2, 2), 2, (1, 1), True, norm,
                               {"affine": True}, dropout_op, {"p": 0.3} if dropout_op else None, nn.LeakyReLU,
                               {"inplace": True}, deep_supervision=deep_supervision, **block)


NETWORKS = {"plain": tiny_unet, "resenc": tiny_resenc}


def build(arch, dim, seed=0, **kwargs):
    torch.manual_seed(seed)
    return NETWORKS[arch](dim, **kwargs)


def image(dim, batch=2):
    return torch.randn(batch, 1, *([16] * dim))


def outputs(net, x):
    out = net(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def same(a, b):
    return all(torch.equal(u, v) for u, v in zip(outputs(*a), outputs(*b), strict=True))


def hooked(module):
    return [h for h in module._forward_hooks.values() if isinstance(h, ChannelDropout)]


@pytest.mark.parametrize("arch", NETWORKS)
@pytest.mark.parametrize("dim", (2, 3))
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_hook_points_and_stock_state_dict(arch, dim, placement):
    net = build(arch, dim)
    assert add_dropout(net, 0.2, placement) == EXPECTED[arch][placement]
    assert len(attached_dropout(net)) == EXPECTED[arch][placement]
    assert all(h.p == 0.2 and h.placement == placement and not h.forced for h in attached_dropout(net))
    if placement == "decoder":
        assert not attached_dropout(net.encoder)
    stock = build(arch, dim).state_dict()
    mine = net.state_dict()
    assert list(mine) == list(stock) and all(torch.equal(mine[k], stock[k]) for k in stock)
    x = image(dim)
    other = build(arch, dim, seed=1).eval()
    other.load_state_dict(net.state_dict())  # our checkpoints load into the stock network ...
    assert same((net.eval(), x), (other, x))
    other = build(arch, dim, seed=2).eval()
    net.load_state_dict(other.state_dict())  # ... and stock checkpoints into ours
    assert same((net, x), (other, x))


@pytest.mark.parametrize("arch", NETWORKS)
@pytest.mark.parametrize("dim", (2, 3))
@pytest.mark.parametrize("placement", ("decoder", "lineage", "all"))
def test_train_stochastic_eval_deterministic_enable_dropout_only_stochastic(arch, dim, placement):
    net = build(arch, dim)
    add_dropout(net, 0.5, placement)
    x = image(dim)
    net.train()
    assert not same((net, x), (net, x))
    net.eval()
    assert same((net, x), (net, x))
    enable_dropout_only(net)
    assert not same((net, x), (net, x))
    assert not any(m.training for m in net.modules())  # norms included; our dropout is forced instead
    assert all(h.forced for h in attached_dropout(net))


@pytest.mark.parametrize("arch", NETWORKS)
@pytest.mark.parametrize("dim", (2, 3))
@pytest.mark.parametrize("deep_supervision", (True, False))
def test_lineage_drops_channels_of_bottleneck_and_last_decoder_stage(arch, dim, deep_supervision):
    net = build(arch, dim, deep_supervision=deep_supervision)
    add_dropout(net, 0.9, "lineage")
    assert hooked(net.encoder.stages[-1]) and hooked(net.decoder.stages[-1])
    seen = {}
    net.decoder.transpconvs[0].register_forward_pre_hook(lambda m, args: seen.__setitem__("bottleneck", args[0]))
    net.decoder.seg_layers[-1].register_forward_pre_hook(lambda m, args: seen.__setitem__("last", args[0]))
    x = image(dim)
    reference = outputs(net.eval(), x)
    clean = dict(seen)
    torch.manual_seed(0)
    enable_dropout_only(net)
    dropped = outputs(net, x)
    assert all(not torch.equal(a, b) for a, b in zip(reference, dropped, strict=True))  # every output head
    for point in ("bottleneck", "last"):
        zero_channels = seen[point].flatten(2).eq(0).all(dim=2)  # (batch, channels)
        assert zero_channels.any() and not clean[point].flatten(2).eq(0).all(dim=2).any()
    # the encoder is deterministic, so the kept bottleneck channels are the clean ones scaled by 1 / (1 - p)
    kept = ~seen["bottleneck"].flatten(2).eq(0).all(dim=2)
    assert torch.allclose(seen["bottleneck"][kept], clean["bottleneck"][kept] / 0.1, rtol=1e-4, atol=1e-5)


def test_all_on_residual_blocks_skips_the_shortcut_projections():
    net = build("resenc", 3, block=BottleneckD, bottleneck_channels=(2, 4, 8))
    assert add_dropout(net, 0.1, "all") == 1 + 3 * 5 + 2  # stem, 3 convs per bottleneck block, decoder
    for block in net.modules():
        if isinstance(getattr(block, "skip", None), nn.Module):
            assert not attached_dropout(block.skip)


def test_deepcopy_gets_its_own_hooks():
    student = build("plain", 3)
    add_dropout(student, 0.5, "decoder")
    teacher = copy.deepcopy(student)
    enable_dropout_only(teacher)
    assert not {id(h) for h in attached_dropout(teacher)} & {id(h) for h in attached_dropout(student)}
    assert not any(h.forced for h in attached_dropout(student))
    x = image(3)
    assert same((student.eval(), x), (student, x))
    assert not same((teacher, x), (teacher, x))


@pytest.mark.parametrize("arch", NETWORKS)
def test_existing_dropout_from_plans_is_kept(arch):
    net = build(arch, 3, dropout_op=nn.Dropout3d)
    assert add_dropout(net, 0.1, "decoder") == 0
    assert not attached_dropout(net)
    assert {m.p for m in net.modules() if isinstance(m, nn.Dropout3d)} == {0.3}
    assert has_dropout(net)


def test_existing_dropout_is_per_block_and_lineage_still_attaches():
    net = build("resenc", 3, dropout_op=nn.Dropout3d)  # plans' dropout in the stem and each block's conv1 only
    assert add_dropout(net, 0.1, "all") == 5  # the residual blocks' conv2; the decoder's blocks have the plans' too
    net = build("plain", 3, dropout_op=nn.Dropout3d)
    assert add_dropout(net, 0.1, "lineage") == 2


def test_second_call_is_a_no_op_with_the_same_settings_and_refused_with_others():
    net = build("plain", 3)
    assert add_dropout(net, 0.2, "decoder") == 4
    assert add_dropout(net, 0.2, "decoder") == 4
    assert len(attached_dropout(net)) == 4
    for p, placement in ((0.3, "decoder"), (0.2, "all"), (0.2, "none"), (0.0, "decoder")):
        with pytest.raises(ValueError, match="already has ALC dropout"):
            add_dropout(net, p, placement)
    assert len(attached_dropout(net)) == 4
    stock = build("plain", 3)
    assert add_dropout(stock, 0.2, "none") == add_dropout(stock, 0.0, "all") == 0 and not has_dropout(stock)


def test_bad_placement_p_and_architecture_are_refused():
    net = build("plain", 3)
    with pytest.raises(ValueError, match="allowed: decoder, lineage, all, none"):
        add_dropout(net, 0.1, "middle")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        add_dropout(net, 1.0, "decoder")
    for placement in ("decoder", "lineage", "all"):
        with pytest.raises(ValueError, match="got Sequential; set ALC_DROPOUT_PLACEMENT=none"):
            add_dropout(nn.Sequential(nn.Conv3d(1, 1, 3)), 0.1, placement)
    assert add_dropout(nn.Sequential(nn.Conv3d(1, 1, 3)), 0.1, "none") == 0


def test_has_dropout():
    assert not has_dropout(build("plain", 3))
    net = build("resenc", 2)
    add_dropout(net, 0.1, "lineage")
    assert has_dropout(net)
    assert has_dropout(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Dropout2d(0.1)))


@pytest.mark.skipif(not torch._dynamo.is_dynamo_supported(), reason="torch.compile (dynamo) is unsupported here")
def test_hooks_work_under_torch_compile():
    """Dynamo captures the hooks in one graph (fullgraph); aot_eager skips inductor's slow C++ build on CPUs."""
    net = build("plain", 2, deep_supervision=False)
    add_dropout(net, 0.5, "lineage")  # before the first compiled call, as in the trainer
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    x = image(2)
    expected = net.eval()(x)
    compiled.eval()
    assert torch.allclose(compiled(x), expected, atol=1e-5) and torch.equal(compiled(x), compiled(x))
    compiled.train()
    assert not torch.equal(compiled(x), compiled(x))
    enable_dropout_only(compiled)
    assert not torch.equal(compiled(x), compiled(x))
