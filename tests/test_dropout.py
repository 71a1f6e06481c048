import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import nn

from nnunetv2_alc.dropout import ConvThenDropout, add_dropout, enable_dropout_only


def tiny_unet(dim=3, dropout_op=None):
    conv, norm = (nn.Conv3d, nn.InstanceNorm3d) if dim == 3 else (nn.Conv2d, nn.InstanceNorm2d)
    return PlainConvUNet(1, 3, (4, 8, 16), conv, 3, (1, 2, 2), 2, 2, (2, 2), True, norm, {"affine": True},
                         dropout_op, {"p": 0.3} if dropout_op else None, nn.LeakyReLU, {"inplace": True},
                         deep_supervision=True)


def dropouts(module):
    return [m for m in module.modules() if isinstance(m, ConvThenDropout)]


@pytest.mark.parametrize("dim, placement, expected", [(3, "decoder", 4), (3, "all", 10), (2, "decoder", 4), (3, "none", 0)])
def test_dropout_is_parameter_free_and_placed(dim, placement, expected):
    torch.manual_seed(0)
    net = tiny_unet(dim)
    keys_before = list(net.state_dict())
    assert add_dropout(net, 0.2, placement) == expected
    assert len(dropouts(net)) == expected
    assert list(net.state_dict()) == keys_before
    if placement == "decoder":
        assert not dropouts(net.encoder)
    assert all(d.p == 0.2 for d in dropouts(net))
    stock = tiny_unet(dim)
    stock.load_state_dict(net.state_dict())  # checkpoints stay loadable by the stock network, and back
    net.load_state_dict(stock.state_dict())
    x = torch.randn(1, 1, *([16] * dim))
    net.eval(), stock.eval()
    assert torch.equal(net(x)[0], stock(x)[0])


def test_train_mode_is_stochastic_and_eval_deterministic():
    torch.manual_seed(0)
    net = tiny_unet()
    add_dropout(net, 0.5, "decoder")
    x = torch.randn(1, 1, 16, 16, 16)
    enable_dropout_only(net)
    assert not torch.allclose(net(x)[0], net(x)[0])
    assert all(not m.training for m in net.modules() if isinstance(m, nn.InstanceNorm3d))
    assert sum(m.training for m in net.modules()) == len(dropouts(net)) == 4
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])


def test_existing_dropout_from_plans_is_kept():
    net = tiny_unet(dropout_op=nn.Dropout3d)
    add_dropout(net, 0.1, "all")
    assert not dropouts(net)
    assert {m.p for m in net.modules() if isinstance(m, nn.Dropout3d)} == {0.3}


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="ALC_DROPOUT_PLACEMENT=none"):
        add_dropout(nn.Sequential(nn.Conv3d(1, 1, 3)), 0.1, "all")
    with pytest.raises(ValueError, match="needs a network with a .decoder"):
        add_dropout(nn.Sequential(nn.Conv3d(1, 1, 3)), 0.1, "decoder")
