"""V-Net (Milletari, Navab & Ahmadi, 2016): residual stages and strided convolutions.

Built from the same per-dimension layer tables as the U-Nets (``dims=3`` by default,
``dims=2`` works for images).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from geounet.errors import ModelError
from geounet.models.unet import _CONV, _CONV_T, _NORM, check_arguments

ENCODER_CONVS = (1, 2, 3, 3, 3)  # convolutions per stage, input stage first, bottom last
DECODER_CONVS = (3, 3, 2, 1)


class ResidualStage(nn.Module):
    """``n`` k x k convolutions with PReLU whose output is added to the stage input."""

    def __init__(self, channels: int, n: int, *, kernel: int, norm: bool, dims: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n):
            layers.append(_CONV[dims](channels, channels, kernel, padding=kernel // 2))
            if norm:
                layers.append(_NORM[dims](channels))
            if i < n - 1:
                layers.append(nn.PReLU(channels))
        self.convs = nn.Sequential(*layers)
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``prelu(convs(x) + x)``."""
        return self.act(self.convs(x) + x)


class VNet(nn.Module):
    """V-Net: residual stages, 2x2 strided-convolution downsampling doubling channels,
    transposed-convolution upsampling, and skip concatenation.

    Args:
        in_channels: Input channels.
        classes: Output channels.
        width: Channels of the first stage (the paper uses 16).
        depth: Number of downsampling steps (the paper uses 4).
        kernel: Convolution kernel size (the paper uses 5).
        batch_norm: Add batch normalization (not in the paper; helps small batches train).
        dims: 3 for volumes, 2 for images.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        *,
        width: int = 16,
        depth: int = 4,
        kernel: int = 5,
        batch_norm: bool = True,
        dims: int = 3,
    ) -> None:
        super().__init__()
        check_arguments("vnet", in_channels, classes, width, depth, dims, max_depth=4)
        if kernel < 1 or kernel % 2 == 0:
            raise ModelError(f"vnet kernel must be odd and positive, got {kernel}")
        conv, conv_t = _CONV[dims], _CONV_T[dims]
        self.stride, self.dims = 2**depth, dims
        chans = [width * 2**i for i in range(depth + 1)]
        kw = {"kernel": kernel, "norm": batch_norm, "dims": dims}
        self.project = conv(in_channels, width, kernel, padding=kernel // 2)
        self.input_stage = ResidualStage(width, ENCODER_CONVS[0], **kw)
        self.downs = nn.ModuleList(
            nn.Sequential(conv(chans[i], chans[i + 1], 2, stride=2), nn.PReLU(chans[i + 1]))
            for i in range(depth)
        )
        self.enc_stages = nn.ModuleList(
            ResidualStage(chans[i + 1], ENCODER_CONVS[i + 1], **kw) for i in range(depth)
        )
        # decoder stage i sees the previous stage's concatenation: 2 * chans[i + 1] channels
        up_in = [chans[depth] if i == depth - 1 else 2 * chans[i + 1] for i in range(depth)]
        self.ups = nn.ModuleList(
            nn.Sequential(conv_t(up_in[i], chans[i], 2, stride=2), nn.PReLU(chans[i]))
            for i in reversed(range(depth))
        )
        self.dec_stages = nn.ModuleList(
            ResidualStage(2 * chans[i], DECODER_CONVS[depth - 1 - i], **kw)
            for i in reversed(range(depth))
        )
        self.head = conv(2 * chans[0], classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the same spatial size as ``x`` (a multiple of ``stride``)."""
        x = self.input_stage(self.project(x))
        skips = [x]
        for down, stage in zip(self.downs, self.enc_stages, strict=True):
            x = stage(down(x))
            skips.append(x)
        skips.pop()
        for up, stage, skip in zip(self.ups, self.dec_stages, reversed(skips), strict=True):
            x = stage(torch.cat([up(x), skip], dim=1))
        return self.head(x)
