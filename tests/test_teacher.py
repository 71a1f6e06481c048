"""Tests of nnunetv2_alc.teacher: EMA decay and update, input noise, unwrapping, the teacher's passes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnunetv2_alc.teacher import MeanTeacher, ema_decay, ema_update_, teacher_noise, unwrap_model

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def test_ema_decay():
    assert ema_decay(0) == 0.0
    assert ema_decay(1) == 0.5
    assert ema_decay(9) == pytest.approx(0.9)
    assert ema_decay(98) == pytest.approx(1 - 1 / 99)
    assert ema_decay(99) == 0.99 and ema_decay(10 ** 6) == 0.99
    assert ema_decay(1000, max_decay=0.999) == 0.999 and ema_decay(10, max_decay=0.999) == pytest.approx(1 - 1 / 11)
    with pytest.raises(ValueError):
        ema_decay(-1)
    with pytest.raises(ValueError):
        ema_decay(3, max_decay=1.5)


# ---------------------------------------------------------------- EMA update

def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4), nn.Dropout3d(0.1), nn.Conv3d(4, 2, 1))
    net.train()
    net(torch.randn(2, 1, 5, 5, 5))  # moves the BatchNorm running statistics away from their defaults
    return net


def snapshot(net: nn.Module) -> dict:
    return {k: v.detach().double().numpy().copy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("decay", [0.0, 0.3, 0.99, 1.0])
def test_ema_update_matches_reference(device, decay):
    teacher, student = small_net(0).to(device), small_net(1).to(device)
    t0, s0 = snapshot(teacher.cpu()), snapshot(student.cpu())
    teacher, student = teacher.to(device), student.to(device)
    ema_update_(teacher, student, decay)
    after = snapshot(teacher.cpu())
    params = {name for name, _ in teacher.named_parameters()}
    buffers = {name for name, _ in teacher.named_buffers()}
    assert params and buffers
    for name in params:
        np.testing.assert_allclose(after[name], decay * t0[name] + (1 - decay) * s0[name], rtol=1e-6, atol=1e-7)
    for name in buffers:
        np.testing.assert_array_equal(after[name], s0[name])
    np.testing.assert_array_equal(snapshot(student.cpu())["0.weight"], s0["0.weight"])  # student untouched


def test_ema_first_step_copies_student_exactly():
    teacher, student = small_net(0), small_net(1)
    ema_update_(teacher, student, ema_decay(0))
    for (name, t), s in zip(teacher.state_dict().items(), student.state_dict().values()):
        assert torch.equal(t, s), name


def test_ema_update_sequence_matches_reference():
    teacher, student = small_net(0), small_net(1)
    expected = snapshot(teacher)["0.weight"]
    for step in range(5):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1)
        g = min(1 - 1 / (step + 1), 0.99)
        expected = g * expected + (1 - g) * snapshot(student)["0.weight"]
        ema_update_(teacher, student, ema_decay(step))
    np.testing.assert_allclose(snapshot(teacher)["0.weight"], expected, rtol=1e-6)


def test_mean_teacher_update_reuses_its_pairs_and_follows_loaded_or_new_students():
    student = small_net(0)
    teacher = MeanTeacher(student, max_decay=0.5)
    teacher.update(student)  # step 0, g = 0: a copy of the student
    pairs = teacher._paired[1]
    expected = snapshot(student)["0.weight"]
    student.load_state_dict(small_net(1).state_dict())  # a checkpoint: copied into the same tensors
    teacher.update(student)  # g = 0.5
    assert teacher._paired[1] is pairs  # reused, not paired anew
    expected = 0.5 * expected + 0.5 * snapshot(student)["0.weight"]
    np.testing.assert_allclose(snapshot(teacher.network)["0.weight"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(snapshot(teacher.network)["1.running_mean"], snapshot(student)["1.running_mean"])
    other = small_net(2)  # another module: paired anew
    teacher.update(other)
    assert teacher._paired[1] is not pairs
    teacher.load_state_dict(teacher.state_dict())  # the teacher's own state loaded: paired anew next time
    assert teacher._paired is None
    expected = 0.5 * expected + 0.5 * snapshot(other)["0.weight"]
    np.testing.assert_allclose(snapshot(teacher.network)["0.weight"], expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="different parameter or buffer names"):
        teacher.update(nn.Sequential(nn.Conv3d(1, 4, 3)))


def test_unwrap_model_and_wrapped_ema():
    net = small_net(2)
    compiled = torch.compile(net)  # lazily compiled: nothing runs until the first forward
    parallel = nn.DataParallel(compiled)
    assert unwrap_model(net) is net
    assert unwrap_model(compiled) is net and unwrap_model(parallel) is net
    assert unwrap_model(torch.compile(nn.DataParallel(net))) is net
    teacher = copy.deepcopy(net)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    ema_update_(torch.compile(teacher), parallel, 0.5)
    for t, s in zip(teacher.parameters(), net.parameters()):
        torch.testing.assert_close(t, 0.75 * s)


def test_unwrap_ddp(tmp_path):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        net = small_net(3)
        wrapped = nn.parallel.DistributedDataParallel(torch.compile(net))
        assert unwrap_model(wrapped) is net
    finally:
        dist.destroy_process_group()


def test_ema_update_rejects_mismatch():
    with pytest.raises(ValueError):
        ema_update_(small_net(0), nn.Sequential(nn.Conv3d(1, 4, 3)), 0.5)
    with pytest.raises(ValueError):
        ema_update_(small_net(0), small_net(1), 1.5)


# ---------------------------------------------------------------- Eq. 3 input noise

@pytest.mark.parametrize("device", DEVICES)
def test_teacher_noise(device):
    x = torch.randn(4, 1, 32, 32, 32, device=device)
    original = x.clone()
    g1 = torch.Generator(device=device).manual_seed(7)
    g2 = torch.Generator(device=device).manual_seed(7)
    a, b = teacher_noise(x, generator=g1), teacher_noise(x, generator=g2)
    assert torch.equal(a, b) and torch.equal(x, original) and a.dtype == x.dtype
    noise = (a - x).double().cpu().numpy()
    assert np.abs(noise).max() <= 0.2 + 1e-6
    clipped = np.mean(np.abs(noise) >= 0.2 - 1e-6)
    assert 0.035 < clipped < 0.056  # P(|N(0, 0.1^2)| >= 0.2) = 4.55 %
    wide = (teacher_noise(x, std=0.1, clip=10.0) - x).double().cpu().numpy()
    assert abs(wide.std() - 0.1) < 0.002 and abs(wide.mean()) < 0.002
    assert torch.equal(teacher_noise(x, std=0.0), x)
    assert not torch.equal(teacher_noise(x), teacher_noise(x))


def test_teacher_noise_keeps_dtype_and_validates():
    x = torch.zeros(2, 1, 8, 8, dtype=torch.bfloat16)
    out = teacher_noise(x, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.bfloat16 and out.abs().max() <= 0.2
    for std, clip in ((-0.1, 0.2), (0.1, -0.2)):
        with pytest.raises(ValueError):
            teacher_noise(x, std, clip)


class Identity2Class(nn.Module):
    """Parameter-free: returns the input's first two channels as logits, so the passes show the noise."""

    def forward(self, x):
        return x[:, :2]


def test_teacher_noise_only_on_image_channels_and_chunks_agree():
    teacher = MeanTeacher(Identity2Class(), 0.99)
    images = torch.zeros(3, 2, 4, 4)
    torch.manual_seed(0)
    probs = teacher.stochastic_probabilities(images, 4, 0.1, 0.2, chunk=5, image_channels=1)
    assert probs.shape == (4, 3, 2, 4, 4)
    logits = torch.log(probs)  # softmax of (x0 + xi, x1): channel 1 (a previous-stage channel) stays noise-free
    difference = logits[:, :, 0] - logits[:, :, 1]
    assert difference.abs().max() > 0 and difference.abs().max() <= 0.2 + 1e-6
    torch.manual_seed(0)
    one_forward = teacher.stochastic_probabilities(images, 4, 0.1, 0.2, chunk=12, image_channels=1)
    assert torch.allclose(one_forward, probs)  # chunking does not change the passes
    noise_free = teacher.stochastic_probabilities(images, 2, 0.1, 0.2, chunk=1, image_channels=0)
    assert torch.equal(noise_free, torch.full_like(noise_free, 0.5))
    with pytest.raises(ValueError, match="chunk"):
        teacher.stochastic_probabilities(images, 2, 0.1, 0.2, chunk=0)
