"""Segmentation losses: BCE + Dice for binary tasks, CE + Dice for multi-class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dice_loss(probs: Tensor, onehot: Tensor, *, eps: float = 1.0) -> Tensor:
    """Soft Dice loss averaged over channels, computed over the whole batch.

    Args:
        probs: (N, K, H, W) probabilities.
        onehot: (N, K, H, W) one-hot targets of the same shape.
        eps: Smoothing added to numerator and denominator.

    Returns:
        ``1 - Dice`` as a scalar.
    """
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * inter + eps) / (total + eps)).mean()


class SegmentationLoss(nn.Module):
    """BCE + Dice when the model has one output channel, CE + Dice otherwise.

    Args:
        dice_weight: Weight of the Dice term (the cross-entropy term has weight 1).
    """

    def __init__(self, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss for logits (N, K, H, W) and integer targets (N, H, W)."""
        logits = logits.float()
        if logits.shape[1] == 1:
            truth = (target > 0).float().unsqueeze(1)
            ce = F.binary_cross_entropy_with_logits(logits, truth)
            dice = dice_loss(torch.sigmoid(logits), truth)
        else:
            ce = F.cross_entropy(logits, target)
            onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
            dice = dice_loss(logits.softmax(1), onehot)
        return ce + self.dice_weight * dice
