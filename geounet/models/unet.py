"""The classic U-Net of Ronneberger et al. (2015), with 'same' or 'valid' convolutions.

The blocks take ``dims`` (2 or 3) so that a volumetric U-Net can reuse them unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from geounet.errors import ModelError

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_UPSAMPLE_MODE = {2: "bilinear", 3: "trilinear"}


def check_arguments(
    name: str,
    in_channels: int,
    classes: int,
    width: int,
    depth: int,
    dims: int,
    max_depth: int | None = None,
) -> None:
    """Raise a :class:`ModelError` naming ``name`` for arguments no network can use."""
    depth_ok = depth >= 1 and (max_depth is None or depth <= max_depth)
    if min(in_channels, classes, width) < 1 or not depth_ok or dims not in (2, 3):
        depths = "depth >= 1" if max_depth is None else f"depth 1..{max_depth}"
        raise ModelError(
            f"{name} needs positive in_channels/classes/width, {depths} and dims 2 or 3, "
            f"got {in_channels=}, {classes=}, {width=}, {depth=}, {dims=}"
        )


def kaiming_init(module: nn.Module) -> None:
    """He-normal weights (fan-in, ReLU) and zero biases for every convolution."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by optional batch norm and ReLU."""

    def __init__(self, in_ch: int, out_ch: int, *, padding: int, norm: bool, dims: int = 2) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(_CONV[dims](c_in, out_ch, 3, padding=padding, bias=not norm))
            if norm:
                layers.append(_NORM[dims](out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Module):
    """Encoder step: a double convolution whose output is kept as skip, then 2x max-pool."""

    def __init__(self, in_ch: int, out_ch: int, *, padding: int, norm: bool, dims: int = 2) -> None:
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, padding=padding, norm=norm, dims=dims)
        self.pool = _POOL[dims](2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(pooled, skip)``."""
        skip = self.conv(x)
        return self.pool(skip), skip


class Up(nn.Module):
    """Decoder step: 2x up-sampling halving channels, concat with the (cropped) skip, convs."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        padding: int,
        norm: bool,
        bilinear: bool = False,
        dims: int = 2,
    ) -> None:
        super().__init__()
        if bilinear:
            self.up: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=_UPSAMPLE_MODE[dims], align_corners=False),
                _CONV[dims](in_ch, out_ch, 1),
            )
        else:
            self.up = _CONV_T[dims](in_ch, out_ch, 2, stride=2)
        self.conv = DoubleConv(2 * out_ch, out_ch, padding=padding, norm=norm, dims=dims)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Up-sample ``x``, center-crop ``skip`` to its size, concatenate and convolve."""
        x = self.up(x)
        crop = tuple(
            slice((s - t) // 2, (s - t) // 2 + t)
            for s, t in zip(skip.shape[2:], x.shape[2:], strict=True)
        )
        return self.conv(torch.cat([skip[(..., *crop)], x], dim=1))


class UNet(nn.Module):
    """Classic U-Net (Ronneberger et al., 2015); 3D with ``dims=3`` (Cicek et al., 2016).

    Args:
        in_channels: Number of input bands.
        classes: Number of output channels (logits).
        width: Channels of the first level; level ``i`` has ``width * 2**i``.
        depth: Number of pooling steps.
        padding: ``"same"`` keeps sizes (inputs must be multiples of ``stride``);
            ``"valid"`` uses unpadded convolutions as in the paper (output is smaller).
        batch_norm: Add batch normalization after every 3x3 convolution.
        dropout: ``nn.Dropout2d`` probability at the bottleneck (0 disables it).
        bilinear: Up-sample bilinearly + 1x1 conv instead of transposed convolutions.
        dims: 2 for images, 3 for volumes (the 3D U-Net of Cicek et al. 2016).
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        *,
        width: int = 64,
        depth: int = 4,
        padding: Literal["same", "valid"] = "same",
        batch_norm: bool = False,
        dropout: float = 0.0,
        bilinear: bool = False,
        dims: int = 2,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ModelError(f"UNet dims must be 2 or 3, got {dims}")
        for name, value in (("in_channels", in_channels), ("classes", classes)):
            if value < 1:
                raise ModelError(f"UNet {name} must be >= 1, got {value}")
        if width < 1 or depth < 1:
            raise ModelError(f"UNet width and depth must be >= 1, got {width=}, {depth=}")
        if padding not in ("same", "valid"):
            raise ModelError(f"UNet padding must be 'same' or 'valid', got {padding!r}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"UNet dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.classes = in_channels, classes
        self.depth, self.padding, self.dims = depth, padding, dims
        self.stride = 2**depth
        pad = 1 if padding == "same" else 0
        chans = [width * 2**i for i in range(depth + 1)]
        self.downs = nn.ModuleList(
            Down(c_in, c_out, padding=pad, norm=batch_norm, dims=dims)
            for c_in, c_out in zip([in_channels, *chans[:-2]], chans[:-1], strict=True)
        )
        self.bottleneck = DoubleConv(chans[-2], chans[-1], padding=pad, norm=batch_norm, dims=dims)
        dropout_cls = nn.Dropout2d if dims == 2 else nn.Dropout3d
        self.dropout = dropout_cls(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            Up(chans[i + 1], chans[i], padding=pad, norm=batch_norm, bilinear=bilinear, dims=dims)
            for i in reversed(range(depth))
        )
        self.head = _CONV[dims](chans[0], classes, 1)
        kaiming_init(self)

    def output_size(self, input_size: int) -> int | None:
        """Output size along one axis for ``input_size``, or None if that size is invalid."""
        if self.padding == "same":
            ok = input_size >= self.stride and input_size % self.stride == 0
            return input_size if ok else None
        size = input_size
        for _ in range(self.depth):
            size -= 4
            if size < 2 or size % 2:
                return None
            size //= 2
        size -= 4  # bottleneck
        for _ in range(self.depth):
            size = 2 * size - 4  # once below 4, sizes only shrink: checking the end suffices
        return size if size >= 1 else None

    def input_size_for(self, output_size: int) -> int:
        """Smallest valid input size whose output size is at least ``output_size``."""
        if output_size < 1:
            raise ModelError(f"output_size must be >= 1, got {output_size}")
        if self.padding == "same":
            return -(-output_size // self.stride) * self.stride
        size = output_size
        for _ in range(self.depth):
            size = -(-(size + 4) // 2)  # invert ``2 * s - 4`` rounding up
        size += 4  # bottleneck
        for _ in range(self.depth):
            size = 2 * size + 4  # invert pooling and the two convolutions
        return size

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, in_channels, [D,] H, W)`` to ``(N, classes, [D',] H', W')`` logits."""
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            axes = "H, W" if self.dims == 2 else "D, H, W"
            raise ModelError(
                f"UNet expects (N, {self.in_channels}, {axes}) input, got {tuple(x.shape)}"
            )
        for axis, size in zip("DHW"[-self.dims :], x.shape[2:], strict=True):
            if self.output_size(size) is not None:
                continue
            if self.padding == "same":
                raise ModelError(
                    f"input {axis}={size} must be a positive multiple of {self.stride} "
                    "(2**depth) in 'same' mode; pad the input"
                )
            valid = max(size, 1)
            while self.output_size(valid) is None:
                valid += 1
            raise ModelError(
                f"input {axis}={size} is invalid in 'valid' mode (a pooling step would get an "
                f"odd or empty size); the next valid size is {valid}"
            )
        skips = []
        for down in self.downs:
            x, skip = down(x)
            skips.append(skip)
        x = self.dropout(self.bottleneck(x))
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            x = up(x, skip)
        return self.head(x)
