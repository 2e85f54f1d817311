"""FCN-8s (Long, Shelhamer & Darrell, 2015) over any segmentation-models-pytorch encoder.

A comparison baseline: class scores from the stride-32, -16 and -8 features are fused by
upsampling and summing, then upsampled to the input size (bilinear, in place of the
paper's learned deconvolutions initialised to bilinear).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FCN(nn.Module):
    """Fully convolutional network with FCN-8s skip fusion.

    Args:
        in_channels: Input bands (the encoder's first convolution adapts).
        classes: Output channels.
        encoder: smp / timm encoder name.
        encoder_weights: Local weights file for the encoder, or None.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        *,
        encoder: str = "resnet18",
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.encoders import get_encoder

        from geounet.models.encoders import load_encoder_weights

        self.encoder = get_encoder(encoder, in_channels=in_channels, depth=5, weights=None)
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights)
        chans = self.encoder.out_channels
        self.score = nn.ModuleList(nn.Conv2d(c, classes, 1) for c in chans[-3:])
        self.stride = int(getattr(self.encoder, "output_stride", 32))

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the same spatial size as ``x`` (a multiple of ``stride``)."""
        features = self.encoder(x)[-3:]  # strides 8, 16, 32
        out = self.score[2](features[2])
        for score, feature in ((self.score[1], features[1]), (self.score[0], features[0])):
            out = F.interpolate(out, size=feature.shape[2:], mode="bilinear", align_corners=False)
            out = out + score(feature)
        return F.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=False)
