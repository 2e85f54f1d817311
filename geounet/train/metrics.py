"""Confusion-matrix metrics accumulated over an epoch."""

from __future__ import annotations

import torch
from torch import Tensor


def predicted_classes(logits: Tensor) -> Tensor:
    """Class ids from logits: threshold 0 for one channel, argmax otherwise."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


class ConfusionMatrix:
    """An accumulating K x K confusion matrix (rows = truth, columns = prediction)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch of predicted and true class ids (any matching shapes)."""
        k = self.num_classes
        index = target.flatten().long().cpu() * k + pred.flatten().long().cpu()
        self.matrix += torch.bincount(index, minlength=k * k).view(k, k)

    def iou(self) -> Tensor:
        """Per-class intersection over union (NaN for classes absent from both)."""
        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return tp / union

    def accuracy(self) -> float:
        """Share of correctly classified pixels."""
        return float(self.matrix.diag().sum() / self.matrix.sum().clamp_min(1))

    def summary_iou(self) -> float:
        """The headline IoU: the foreground IoU for binary tasks, mean IoU otherwise."""
        iou = self.iou()
        if self.num_classes == 2:
            return float(torch.nan_to_num(iou[1], nan=0.0))
        return float(torch.nanmean(iou))
