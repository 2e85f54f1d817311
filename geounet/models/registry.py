"""One registry of model architectures, one constructor signature.

Every architecture is built as ``build_model(name, in_channels, classes, **arguments)``.
The registry is a fixed table: looking a name up never imports plugins or changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from geounet.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture."""

    name: str
    description: str
    build: Callable[..., nn.Module]
    dims: int = 2
    timesteps: int = 1  # dates stacked in the input that the architecture expects (>= 2)


def _unet(in_channels: int, classes: int, *, encoder: str | None = None, **arguments: Any):
    if encoder is None:
        from geounet.models.unet import UNet

        return UNet(in_channels, classes, **arguments)
    return _smp("Unet")(in_channels, classes, encoder=encoder, **arguments)


def _smp(architecture: str, default_encoder: str = "resnet18") -> Callable[..., nn.Module]:
    def build(in_channels: int, classes: int, *, encoder: str = default_encoder, **arguments):
        from geounet.models.encoders import smp_model

        return smp_model(architecture, in_channels, classes, encoder=encoder, **arguments)

    return build


def _own(module: str, cls: str, **defaults: Any) -> Callable[..., nn.Module]:
    def build(in_channels: int, classes: int, **arguments: Any) -> nn.Module:
        import importlib

        factory = getattr(importlib.import_module(f"geounet.models.{module}"), cls)
        return factory(in_channels, classes, **{**defaults, **arguments})

    return build


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "unet",
            "U-Net (Ronneberger et al. 2015); with encoder=NAME a U-Net over any smp/timm encoder",
            _unet,
        ),
        ModelSpec(
            "unetplusplus",
            "U-Net++ (Zhou et al. 2018): nested dense skip pathways, smp encoder",
            _smp("UnetPlusPlus"),
        ),
        ModelSpec(
            "attention_unet",
            "Attention U-Net (Oktay et al. 2018): additive attention gates on the skips",
            _own("attention_unet", "AttentionUNet"),
        ),
        ModelSpec(
            "resunet",
            "ResUNet (Zhang et al. 2018): pre-activation residual units, built for roads",
            _own("resunet", "ResUNet"),
        ),
        ModelSpec(
            "linknet",
            "LinkNet (Chaurasia & Culurciello 2017): additive skips, light decoder, smp encoder",
            _smp("Linknet"),
        ),
        ModelSpec(
            "fcn",
            "FCN-8s (Long et al. 2015) over an smp encoder: baseline",
            _own("fcn", "FCN"),
        ),
        ModelSpec(
            "deeplabv3plus",
            "DeepLabV3+ (Chen et al. 2018): atrous spatial pyramid pooling, baseline",
            _smp("DeepLabV3Plus"),
        ),
        ModelSpec(
            "siamese_unet",
            "Siamese U-Net: pre and post dates through one shared encoder, fused decoder, "
            "localisation from pre (xView2 winners' design): change and damage",
            _own("siamese", "SiameseUNet"),
            timesteps=2,
        ),
        ModelSpec(
            "unet3d",
            "3D U-Net (Cicek et al. 2016) for volumes: the U-Net blocks in 3D with batch norm",
            _own("unet", "UNet", dims=3, width=32, depth=3, batch_norm=True),
            dims=3,
        ),
        ModelSpec(
            "vnet",
            "V-Net (Milletari et al. 2016) for volumes: residual stages, strided convolutions",
            _own("vnet", "VNet"),
            dims=3,
        ),
    )
}


def build_model(name: str, in_channels: int, classes: int, **arguments: Any) -> nn.Module:
    """Build a registered architecture.

    Args:
        name: Registered name (see :data:`REGISTRY`).
        in_channels: Number of input bands.
        classes: Number of output channels.
        **arguments: Architecture-specific arguments.

    Returns:
        The network (an ``nn.Module`` mapping (N, in_channels, H, W) to (N, classes, h, w)).

    Raises:
        ModelError: Unknown name or invalid arguments.
    """
    spec = REGISTRY.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(REGISTRY))}")
    if in_channels < 1 or classes < 1:
        raise ModelError(f"model {name!r}: in_channels and classes must be >= 1")
    try:
        return spec.build(in_channels, classes, **arguments)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: invalid arguments {arguments} ({exc})") from exc
