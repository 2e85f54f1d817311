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


def _unet(in_channels: int, classes: int, *, encoder: str | None = None, **arguments: Any):
    if encoder is None:
        from geounet.models.unet import UNet

        return UNet(in_channels, classes, **arguments)
    from geounet.models.encoders import smp_model

    return smp_model("Unet", in_channels, classes, encoder=encoder, **arguments)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "unet",
            "U-Net (Ronneberger et al. 2015); with encoder=NAME, a U-Net over any "
            "segmentation-models-pytorch / timm encoder",
            _unet,
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
    try:
        return spec.build(in_channels, classes, **arguments)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: invalid arguments {arguments} ({exc})") from exc
