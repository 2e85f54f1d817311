"""Tests for the model registry."""

import pytest
import torch

from geounet.errors import ModelError
from geounet.models.registry import REGISTRY, build_model
from geounet.models.unet import UNet


def test_builds_classic_unet() -> None:
    net = build_model("unet", 3, 2, width=4, depth=2)
    assert isinstance(net, UNet)
    assert net.in_channels == 3 and net.classes == 2
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 2, 16, 16)


def test_builds_smp_unet_with_encoder() -> None:
    net = build_model("unet", 4, 1, encoder="resnet18")
    assert not isinstance(net, UNet)
    assert net.stride == 32
    assert net(torch.zeros(1, 4, 64, 64)).shape == (1, 1, 64, 64)


def test_unknown_name_lists_available() -> None:
    with pytest.raises(ModelError, match="unknown model 'segformer'") as info:
        build_model("segformer", 3, 2)
    for name in REGISTRY:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "arguments",
    [
        {"widht": 4},  # misspelt keyword
        {"width": 0},  # invalid value
        {"padding": "reflect"},
        {"encoder": "not-an-encoder"},
    ],
)
def test_bad_arguments_are_model_errors(arguments: dict) -> None:
    with pytest.raises(ModelError):
        build_model("unet", 3, 2, **arguments)


def test_model_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        build_model("nope", 3, 2)
