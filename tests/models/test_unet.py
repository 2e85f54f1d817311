"""Tests for the classic U-Net implementation."""

import pytest
import torch
from torch import nn

from geounet.errors import ModelError
from geounet.models.unet import UNet

PAPER_PARAMS = 31_030_658  # UNet(1, 2, width=64, padding="valid"), transposed-conv up-sampling


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_configuration_layers_and_parameters() -> None:
    model = UNet(1, 2, width=64, padding="valid")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 23
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in convs) == 4
    assert sum(m.kernel_size == (3, 3) for m in convs) == 18
    assert sum(m.kernel_size == (1, 1) for m in convs) == 1
    assert abs(_n_params(model) - 31.0e6) <= 0.1e6
    assert _n_params(model) == PAPER_PARAMS
    assert model.stride == 16
    assert model.output_size(572) == 388
    assert model.input_size_for(388) == 572


def test_paper_configuration_forward_572() -> None:
    torch.manual_seed(0)
    model = UNet(1, 2, width=64, padding="valid").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)
    assert torch.isfinite(out).all()


def test_same_padding_preserves_size() -> None:
    model = UNet(3, 5, width=4)
    out = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 5, 64, 96)
    assert model.output_size(64) == 64
    assert model.output_size(65) is None
    assert model.input_size_for(1) == 16
    assert model.input_size_for(17) == 32


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((63, 64), "H=63"),
        ((64, 65), "W=65"),
        ((8, 16), "H=8"),
        ((64, 40), "W=40"),
        ((0, 16), "H=0"),
    ],
)
def test_same_padding_rejects_non_multiples(shape: tuple[int, int], message: str) -> None:
    model = UNet(1, 1, width=2)
    with pytest.raises(ModelError, match=message):
        model(torch.randn(1, 1, *shape))


def test_valid_mode_rejects_invalid_sizes() -> None:
    model = UNet(1, 1, width=2, padding="valid")
    assert model.output_size(100) is None  # too small
    assert model.output_size(573) is None  # odd size at a pooling step
    with pytest.raises(ModelError, match="573"):
        model(torch.randn(1, 1, 572, 573))
    with pytest.raises(ModelError, match="100"):
        model(torch.randn(1, 1, 100, 100))


def test_forward_rejects_wrong_input_shape() -> None:
    model = UNet(3, 1, width=2)
    with pytest.raises(ModelError):
        model(torch.randn(1, 2, 32, 32))
    with pytest.raises(ModelError):
        model(torch.randn(3, 32, 32))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_mode_size_arithmetic_matches_forward(depth: int) -> None:
    model = UNet(2, 3, width=4, depth=depth, padding="valid").eval()
    for target in (1, 5, 20, 37):
        n = model.input_size_for(target)
        out = model.output_size(n)
        assert out is not None and out >= target
        # n is the smallest valid input reaching the target
        assert all(
            model.output_size(m) is None or model.output_size(m) < target for m in range(1, n)
        )
    for n in (model.input_size_for(1), model.input_size_for(30)):
        with torch.no_grad():
            y = model(torch.randn(1, 2, n, n + model.stride))
        assert y.shape == (1, 3, model.output_size(n), model.output_size(n + model.stride))


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_depths_and_width(depth: int) -> None:
    model = UNet(2, 3, width=8, depth=depth)
    assert model.stride == 2**depth
    size = 2**depth * 2
    assert model(torch.randn(1, 2, size, size)).shape == (1, 3, size, size)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert max(widths) == 8 * 2**depth


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"batch_norm": True},
        {"dropout": 0.5},
        {"bilinear": True},
        {"batch_norm": True, "dropout": 0.2, "bilinear": True, "padding": "valid"},
    ],
)
def test_variants_forward_backward(kwargs: dict) -> None:
    torch.manual_seed(0)
    model = UNet(3, 2, width=4, depth=3, **kwargs)
    size = model.input_size_for(16)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape[:2] == (2, 2)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    if kwargs.get("batch_norm"):
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if kwargs.get("dropout"):
        assert any(isinstance(m, nn.Dropout2d) for m in model.modules())
    if kwargs.get("bilinear"):
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
        assert any(isinstance(m, nn.Upsample) for m in model.modules())


def test_initialisation() -> None:
    torch.manual_seed(0)
    model = UNet(1, 2, width=16, padding="valid")
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            assert torch.count_nonzero(m.bias) == 0
    conv = model.downs[1].conv[0]  # 16 -> 32 channels, fan_in = 16 * 9
    expected = (2.0 / (16 * 9)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.1)


def test_deterministic_under_seed() -> None:
    torch.manual_seed(123)
    a = UNet(3, 4, width=4, batch_norm=True, bilinear=True)
    torch.manual_seed(123)
    b = UNet(3, 4, width=4, batch_norm=True, bilinear=True)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb
        assert torch.equal(pa, pb)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((0, 2), {}),
        ((1, 0), {}),
        ((1, 2), {"width": 0}),
        ((1, 2), {"depth": 0}),
        ((1, 2), {"padding": "reflect"}),
        ((1, 2), {"dropout": 1.0}),
        ((1, 2), {"dropout": -0.1}),
    ],
)
def test_invalid_arguments(args: tuple, kwargs: dict) -> None:
    with pytest.raises(ModelError) as info:
        UNet(*args, **kwargs)
    assert isinstance(info.value, ValueError)


def test_input_size_for_rejects_non_positive() -> None:
    with pytest.raises(ModelError):
        UNet(1, 1, width=2).input_size_for(0)
