"""Tests for the Segmenter wrapper: normalization, stride padding and cropping."""

import pytest
import torch
from torch import nn

from geounet.models.registry import build_model
from geounet.models.segmenter import Segmenter
from geounet.models.unet import UNet

SIZES = [(45, 70), (33, 33), (64, 96), (7, 130), (100, 31)]


class Recorder(nn.Module):
    """Identity network that remembers its last input (optionally with a stride)."""

    def __init__(self, stride: int | None = None) -> None:
        super().__init__()
        if stride is not None:
            self.stride = stride
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.clone()
        return x


@pytest.fixture(scope="module")
def smp_net() -> nn.Module:
    torch.manual_seed(0)
    return build_model("unet", 3, 2, encoder="resnet18").eval()


@pytest.mark.parametrize(("h", "w"), [(45, 70), (7, 130), (33, 33)])
def test_smp_any_size(smp_net: nn.Module, h: int, w: int) -> None:
    model = Segmenter(smp_net, [0.0] * 3, [1.0] * 3).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, h, w))
    assert y.shape == (1, 2, h, w)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("h", "w"), SIZES)
def test_classic_unet_any_size(padding: str, h: int, w: int) -> None:
    torch.manual_seed(0)
    net = UNet(3, 2, width=4, depth=2, padding=padding)
    model = Segmenter(net, [0.0] * 3, [1.0] * 3).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, h, w))
    assert y.shape == (1, 2, h, w)
    assert torch.isfinite(y).all()


def test_valid_unet_output_is_centred_on_the_input() -> None:
    """The cropped output of a 'valid' U-Net must correspond to the input pixels.

    A shifted crop would move a localized response; a fully convolutional network's
    response to a centred dot must be identical (up to translation) to the response
    to a dot placed elsewhere, so compare the argmax positions.
    """
    torch.manual_seed(0)
    net = UNet(1, 1, width=4, depth=2, padding="valid")
    model = Segmenter(net, [0.0], [1.0]).eval()
    with torch.no_grad():
        for r, c in [(30, 40), (50, 20)]:
            x = torch.zeros(1, 1, 80, 70)
            x[..., r, c] = 100.0
            base = model(torch.zeros(1, 1, 80, 70))
            diff = (model(x) - base).abs()[0, 0]
            peak = divmod(int(diff.argmax()), diff.shape[1])
            assert abs(peak[0] - r) <= 4 and abs(peak[1] - c) <= 4


@pytest.mark.parametrize(("h", "w"), [(45, 70), (32, 64), (3, 5)])
def test_stride_padding_and_crop_back(h: int, w: int) -> None:
    net = Recorder(stride=16)
    model = Segmenter(net, [0.0], [1.0])
    x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    y = model(x)
    assert net.seen.shape[-2] % 16 == 0 and net.seen.shape[-1] % 16 == 0
    assert net.seen.shape[-2] - h < 16 and net.seen.shape[-1] - w < 16
    torch.testing.assert_close(y, x)  # cropped back exactly onto the input pixels


def test_normalization_uses_mean_and_std_buffers() -> None:
    net = Recorder()
    mean, std = [10.0, 100.0, -5.0], [2.0, 50.0, 0.5]
    model = Segmenter(net, mean, std)
    buffers = dict(model.named_buffers())
    assert set(buffers) == {"mean", "std"}
    assert buffers["mean"].shape == (1, 3, 1, 1)
    x = torch.randint(0, 255, (2, 3, 9, 11), dtype=torch.uint8)
    y = model(x)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(y, (x.float() - m) / s)
    assert "mean" in model.state_dict() and "std" in model.state_dict()


def test_zero_std_does_not_divide_by_zero() -> None:
    model = Segmenter(Recorder(), [1.0], [0.0])
    assert torch.isfinite(model(torch.ones(1, 1, 4, 4))).all()


class ValidCrop(nn.Module):
    """A fake 'valid' network: drops a margin of 5 pixels on each side."""

    def input_size_for(self, size: int) -> int:
        return size + 10 + size % 2  # odd sizes get an asymmetric extra pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 5:-5, 5:-5]


@pytest.mark.parametrize(("h", "w"), [(20, 20), (21, 34), (9, 4)])
def test_valid_padding_maps_output_onto_input_pixels(h: int, w: int) -> None:
    model = Segmenter(ValidCrop(), [0.0], [1.0])
    x = torch.rand(1, 1, h, w)
    torch.testing.assert_close(model(x), x)


def test_net_with_a_conv_stride_tuple() -> None:
    """A bare nn.Conv2d has ``stride == (1, 1)``: not a padding multiple to choke on."""
    conv = nn.Conv2d(2, 1, 1)
    model = Segmenter(conv, [0.0, 0.0], [1.0, 1.0])
    assert model(torch.rand(1, 2, 13, 7)).shape == (1, 1, 13, 7)
