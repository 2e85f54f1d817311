"""ResUNet (Zhang, Liu & Wang, 2018): a U-Net of pre-activation residual units, for roads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geounet.models.unet import _CONV, _NORM, _UPSAMPLE_MODE, check_arguments, kaiming_init


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: (BN-ReLU-Conv) x 2 plus a projected shortcut.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        stride: Stride of the first convolution (2 halves the size).
        first: The network's first unit, whose first convolution has no pre-activation.
        dims: 2 or 3 spatial dimensions.
    """

    def __init__(
        self, in_ch: int, out_ch: int, *, stride: int = 1, first: bool = False, dims: int = 2
    ) -> None:
        super().__init__()
        conv, norm = _CONV[dims], _NORM[dims]
        pre = [] if first else [norm(in_ch), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(
            *pre,
            conv(in_ch, out_ch, 3, stride=stride, padding=1),
            norm(out_ch),
            nn.ReLU(inplace=True),
            conv(out_ch, out_ch, 3, padding=1),
        )
        self.shortcut = nn.Sequential(conv(in_ch, out_ch, 1, stride=stride), norm(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        """``body(x) + shortcut(x)``."""
        return self.body(x) + self.shortcut(x)


class ResUNet(nn.Module):
    """Deep residual U-Net: residual encoder units with strided downsampling, a residual
    bridge, and residual decoder units after each upsampling and skip concatenation.

    Args:
        in_channels: Input bands.
        classes: Output channels.
        width: Channels of the first level (the paper uses 64), doubling per level.
        depth: Number of downsampling steps (the paper uses 3: encoder levels 2-3 and the
            bridge).
        dims: 2 or 3 spatial dimensions.
    """

    def __init__(
        self, in_channels: int, classes: int, *, width: int = 64, depth: int = 3, dims: int = 2
    ) -> None:
        super().__init__()
        check_arguments("resunet", in_channels, classes, width, depth, dims)
        self.stride, self.dims = 2**depth, dims
        chans = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList([ResidualUnit(in_channels, chans[0], first=True, dims=dims)])
        self.encoder.extend(
            ResidualUnit(chans[i], chans[i + 1], stride=2, dims=dims) for i in range(depth)
        )
        self.decoder = nn.ModuleList(
            ResidualUnit(chans[i + 1] + chans[i], chans[i], dims=dims)
            for i in reversed(range(depth))
        )
        self.head = _CONV[dims](chans[0], classes, 1)
        kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the same spatial size as ``x`` (a multiple of ``stride``)."""
        skips = []
        for unit in self.encoder:
            x = unit(x)
            skips.append(x)
        x = skips.pop()  # the bridge output
        for unit, skip in zip(self.decoder, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[2:], mode=_UPSAMPLE_MODE[self.dims])
            x = unit(torch.cat([x, skip], dim=1))
        return self.head(x)
