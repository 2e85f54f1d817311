"""Attention U-Net (Oktay et al., 2018): additive attention gates on the skip connections."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from geounet.models.unet import (
    _CONV,
    _CONV_T,
    _NORM,
    DoubleConv,
    Down,
    check_arguments,
    kaiming_init,
)


class AttentionGate(nn.Module):
    """Additive attention: ``skip * sigmoid(psi(relu(W_x skip + W_g gate)))``.

    Args:
        skip_ch: Channels of the skip connection (the features being gated).
        gate_ch: Channels of the gating signal from the coarser decoder level.
        inter_ch: Channels of the intermediate space.
        dims: 2 or 3 spatial dimensions.
    """

    def __init__(self, skip_ch: int, gate_ch: int, inter_ch: int, *, dims: int = 2) -> None:
        super().__init__()
        conv, norm = _CONV[dims], _NORM[dims]
        self.w_x = nn.Sequential(conv(skip_ch, inter_ch, 1, bias=False), norm(inter_ch))
        self.w_g = nn.Sequential(conv(gate_ch, inter_ch, 1, bias=True), norm(inter_ch))
        self.psi = nn.Sequential(conv(inter_ch, 1, 1, bias=True), norm(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, skip: Tensor, gate: Tensor) -> Tensor:
        """Gate ``skip`` (same spatial size as ``gate``)."""
        alpha = self.psi(self.relu(self.w_x(skip) + self.w_g(gate)))
        return skip * alpha


class AttentionUNet(nn.Module):
    """U-Net whose skip connections pass through attention gates.

    Args:
        in_channels: Input bands.
        classes: Output channels.
        width: Channels of the first level (doubling per level).
        depth: Number of pooling steps.
        dims: 2 for images, 3 for volumes.
    """

    def __init__(
        self, in_channels: int, classes: int, *, width: int = 32, depth: int = 4, dims: int = 2
    ) -> None:
        super().__init__()
        check_arguments("attention_unet", in_channels, classes, width, depth, dims)
        self.stride = 2**depth
        chans = [width * 2**i for i in range(depth + 1)]
        self.downs = nn.ModuleList(
            Down(c_in, c_out, padding=1, norm=True, dims=dims)
            for c_in, c_out in zip([in_channels, *chans[:-2]], chans[:-1], strict=True)
        )
        self.bottleneck = DoubleConv(chans[-2], chans[-1], padding=1, norm=True, dims=dims)
        levels = list(reversed(range(depth)))
        self.ups = nn.ModuleList(_CONV_T[dims](chans[i + 1], chans[i], 2, stride=2) for i in levels)
        self.gates = nn.ModuleList(
            AttentionGate(chans[i], chans[i], max(1, chans[i] // 2), dims=dims) for i in levels
        )
        self.convs = nn.ModuleList(
            DoubleConv(2 * chans[i], chans[i], padding=1, norm=True, dims=dims) for i in levels
        )
        self.head = _CONV[dims](chans[0], classes, 1)
        kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the same spatial size as ``x`` (a multiple of ``stride``)."""
        skips = []
        for down in self.downs:
            x, skip = down(x)
            skips.append(skip)
        x = self.bottleneck(x)
        for up, gate, conv, skip in zip(
            self.ups, self.gates, self.convs, reversed(skips), strict=True
        ):
            x = up(x)
            x = conv(torch.cat([gate(skip, x), x], dim=1))
        return self.head(x)
