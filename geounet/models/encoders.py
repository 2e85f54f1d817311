"""Networks over segmentation-models-pytorch / timm encoders, with local weights only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geounet.errors import InputFileNotFoundError, ModelError


def smp_model(
    architecture: str,
    in_channels: int,
    classes: int,
    *,
    encoder: str,
    encoder_weights: str | None = None,
    **arguments: Any,
) -> nn.Module:
    """Build an smp architecture; pretrained encoder weights come from a local file.

    Args:
        architecture: smp class name, e.g. ``"Unet"``.
        in_channels: Input bands (smp adapts the first convolution).
        classes: Output channels.
        encoder: Encoder name, e.g. ``"resnet34"``.
        encoder_weights: Path of a local ``.safetensors`` / ``.pth`` state dict for the
            encoder. Names like ``"imagenet"`` would need a download and are refused.
        **arguments: Passed to the smp class.

    Returns:
        The network, with ``stride`` set to the encoder's output stride.
    """
    import segmentation_models_pytorch as smp

    cls = getattr(smp, architecture)
    try:
        net = cls(
            encoder_name=encoder,
            encoder_weights=None,
            in_channels=in_channels,
            classes=classes,
            **arguments,
        )
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{architecture} with encoder {encoder!r}: {exc}") from exc
    if encoder_weights is not None:
        load_encoder_weights(net.encoder, encoder_weights)
    net.stride = int(getattr(net.encoder, "output_stride", 32))
    return net


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local state dict into an encoder, adapting the first convolution's bands.

    Args:
        encoder: The encoder module.
        path: A ``.safetensors`` file, or a ``.pth``/``.pt`` state dict (read with
            ``weights_only=True``: no arbitrary pickle).

    Raises:
        InputFileNotFoundError: If ``path`` is not a local file (nothing is downloaded).
        ModelError: If the tensors do not fit the encoder.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(
            f"encoder_weights {str(path)!r} is not a local file; geounet never downloads "
            "weights: download them yourself and give the file path"
        )
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(p)
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    own = encoder.state_dict()
    if not set(state) & set(own):
        raise ModelError(f"{p}: no tensor matches the encoder; is it the right encoder's weights?")
    for key, value in list(state.items()):
        target = own.get(key)
        if target is None or target.shape == value.shape:
            continue
        if (
            value.ndim == 4
            and target.shape[0] == value.shape[0]
            and value.shape[2:] == target.shape[2:]
        ):
            # First convolution of a multispectral model: cycle the pretrained input
            # channels and rescale so activations keep their magnitude.
            idx = torch.arange(target.shape[1]) % value.shape[1]
            state[key] = value[:, idx] * (value.shape[1] / target.shape[1])
        else:
            raise ModelError(
                f"{p}: tensor {key!r} has shape {tuple(value.shape)}, "
                f"the encoder needs {tuple(target.shape)}"
            )
    encoder.load_state_dict(state, strict=False)
