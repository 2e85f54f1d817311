"""A siamese U-Net for change and damage: dates through one shared encoder, features
fused in the decoder (as the xView2 winning solutions).

The input stacks ``timesteps`` dates as channels (pre, then post). Each date goes through
the same encoder; a fused decoder sees the concatenated features of all dates. With more
than one output class, a second decoder on the first date alone predicts where objects
are, and the outputs are log-probabilities::

    P(background) = 1 - sigmoid(l),  P(class k) = sigmoid(l) * softmax(d)_k

where ``l`` is the localisation logit (first date: buildings before the disaster) and
``d`` the fused logits (the pair: damage). Softmax of the outputs gives back these
probabilities, so cross-entropy and Dice train both decoders: localisation from the
pre image, damage from the pair. One output channel is plain change detection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geounet.errors import ModelError


class SiameseUNet(nn.Module):
    """Shared-encoder U-Net over stacked dates.

    Args:
        in_channels: Channels of all dates together (``timesteps`` x bands).
        classes: Output channels; channel 0 is background when there are several.
        encoder: smp / timm encoder name.
        encoder_weights: Local file of pretrained encoder weights (nothing is downloaded).
        timesteps: Dates stacked in the input.
        decoder_channels: Channels of the five decoder stages.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        *,
        encoder: str = "resnet18",
        encoder_weights: str | None = None,
        timesteps: int = 2,
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
        from segmentation_models_pytorch.encoders import get_encoder

        if timesteps < 2 or in_channels % timesteps:
            raise ModelError(
                f"siamese_unet: {in_channels} input channels do not split into {timesteps} "
                "dates; train on stacked dates (data.images: [[pre.tif, post.tif]])"
            )
        self.timesteps = timesteps
        self.bands = in_channels // timesteps
        try:
            self.encoder = get_encoder(encoder, in_channels=self.bands, depth=5, weights=None)
        except (KeyError, ValueError) as exc:
            raise ModelError(f"siamese_unet with encoder {encoder!r}: {exc}") from exc
        if encoder_weights is not None:
            from geounet.models.encoders import load_encoder_weights

            load_encoder_weights(self.encoder, encoder_weights)
        channels = list(self.encoder.out_channels)
        fused = [c * timesteps for c in channels]
        self.decoder = UnetDecoder(fused, decoder_channels, n_blocks=5)
        self.head = SegmentationHead(decoder_channels[-1], max(1, classes - 1), kernel_size=3)
        self.localize = classes > 1  # one channel: change / no change from the pair
        if self.localize:
            self.loc_decoder = UnetDecoder(channels, decoder_channels, n_blocks=5)
            self.loc_head = SegmentationHead(decoder_channels[-1], 1, kernel_size=3)
        self.stride = int(getattr(self.encoder, "output_stride", 32))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes, H, W) of stacked dates (N, timesteps x bands, H, W)."""
        n = x.shape[0]
        dates = x.reshape(n * self.timesteps, self.bands, *x.shape[2:])
        feats = self.encoder(dates)  # one pass over every date: shared weights
        per_date = [f.reshape(n, self.timesteps, *f.shape[1:]) for f in feats]
        fused = [f.flatten(1, 2) for f in per_date]
        logits = self.head(self.decoder(fused))
        if not self.localize:
            return logits
        loc = self.loc_head(self.loc_decoder([f[:, 0] for f in per_date])).float()
        damage = F.log_softmax(logits.float(), dim=1)
        return torch.cat([F.logsigmoid(-loc), F.logsigmoid(loc) + damage], dim=1)
