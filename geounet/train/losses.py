"""Segmentation losses, combinable with weights from the config (``train.loss``).

Binary tasks (``num_classes == 2``) have models with one logit channel (sigmoid, foreground =
``target > 0``); multi-class tasks have ``num_classes`` channels (softmax). Every loss is
computed in float32 and excludes pixels equal to ``ignore_index``:

- ``bce`` / ``ce``: binary / multi-class cross-entropy, mean over valid pixels; with
  ``class_weights`` each pixel is weighted by the weight of its true class and the mean is
  normalised by the sum of those weights (torch's weighted cross-entropy; binary BCE with
  logit ``z`` equals 2-class CE with logits ``(0, z)``).
- ``dice`` / ``jaccard`` / ``tversky``: soft region losses of
  ``segmentation_models_pytorch`` over the whole batch: ``1 - score`` per class (binary: the
  foreground channel only), set to 0 for classes absent from the batch targets, then averaged
  over all classes. Ignored pixels are zeroed in predictions and targets. Tversky uses smp's
  defaults ``alpha = beta = 0.5`` (FP and FN weights), which makes it equal to Dice.
- ``focal``: gamma 2, no alpha; binary: smp's sigmoid focal loss; multi-class: softmax focal
  loss ``-(1 - p_t)^gamma log p_t`` (equals ``ce`` at gamma 0), mean over valid pixels.
- ``lovasz``: smp's Lovasz hinge (binary) / Lovasz-softmax over classes present (multi-class),
  over the whole batch.
- ``cldice``: centre-line Dice (Shit et al., CVPR 2021) for thin networks such as roads:
  the soft skeleton of the prediction should lie inside the true mask (topology precision)
  and the true skeleton inside the prediction (topology sensitivity); ``1 -`` their
  harmonic mean, over the whole batch and every foreground class.

``class_weights`` only affect ``bce`` / ``ce``. A batch without valid pixels gives 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import (
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszLoss,
    TverskyLoss,
)
from torch import Tensor, nn

from geounet.errors import ConfigError

LOSSES = ("bce", "ce", "dice", "jaccard", "focal", "tversky", "lovasz", "cldice")
FOCAL_GAMMA = 2.0
TVERSKY_ALPHA = 0.5  # weight of false positives (smp default)
TVERSKY_BETA = 0.5  # weight of false negatives (smp default)
CLDICE_ITERATIONS = 10  # soft-skeleton erosions: reaches the centre of roads ~20 px wide


class WeightedLoss(nn.Module):
    """Weighted sum of named segmentation losses, called as ``loss(logits, target)``.

    Args:
        weights: Loss name -> positive weight (names from :data:`LOSSES`, validated).
        channels: Logit channels of the model: 1 (binary, sigmoid) or the class count.
        class_weights: Optional per-class weights of ``bce`` / ``ce`` (2 for binary).
        ignore_index: Target value excluded from every loss.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        channels: int,
        class_weights: Sequence[float] | None = None,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.channels = channels
        self.binary = channels == 1
        self.ignore_index = ignore_index
        cw = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", cw, persistent=False)  # not in checkpoints
        # Region losses get probabilities and targets that are already masked (binary: the
        # foreground channel; multi-class: one-hot targets, hence smp's "multilabel" mode).
        mode = "binary" if self.binary else "multilabel"
        self.region = nn.ModuleDict(
            {
                "dice": DiceLoss(mode, from_logits=False),
                "jaccard": JaccardLoss(mode, from_logits=False),
                "tversky": TverskyLoss(
                    mode, from_logits=False, alpha=TVERSKY_ALPHA, beta=TVERSKY_BETA
                ),
            }
        )
        self.binary_focal = FocalLoss("binary", alpha=None, gamma=FOCAL_GAMMA)
        self.lovasz = (
            LovaszLoss("binary") if self.binary else LovaszLoss("multiclass", ignore_index=-1)
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted sum of the losses for logits (N, K, H, W) and integer targets (N, H, W)."""
        terms = self.components(logits, target)
        return sum(self.weights[name] * value for name, value in terms.items())

    def components(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Unweighted value of each configured loss (float32 scalars)."""
        if logits.ndim not in (4, 5) or logits.shape[1] != self.channels:
            raise ValueError(
                f"loss expects logits (N, {self.channels}, H, W) or (N, {self.channels}, D, H, "
                f"W), got {tuple(logits.shape)}"
            )
        logits, target = logits.float(), target.long()
        if logits.ndim == 5:  # volumes: fold depth into height (every loss is per voxel)
            logits = logits.flatten(2, 3)
            target = target.flatten(1, 2)
        valid = torch.ones_like(target, dtype=torch.bool)
        if self.ignore_index is not None:
            valid = target != self.ignore_index
        if not valid.any():
            return {name: logits.sum() * 0.0 for name in self.weights}
        return {name: self._term(name, logits, target, valid) for name in self.weights}

    def _term(self, name: str, logits: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        if self.binary:
            z, fg = logits[:, 0], (target > 0).float()
            if name == "bce":
                per_pixel = F.binary_cross_entropy_with_logits(z, fg, reduction="none")
                return _weighted_mean(per_pixel, target > 0, valid, self.class_weights)
            if name == "focal":
                return self.binary_focal(z[valid], fg[valid])
            if name == "lovasz":
                return self.lovasz(z[valid], fg[valid])
            m = valid.float()
            if name == "cldice":
                return cldice_loss((torch.sigmoid(z) * m)[:, None], (fg * m)[:, None])
            return self.region[name](torch.sigmoid(z) * m, fg * m)
        if name == "ce":
            per_pixel = F.cross_entropy(logits, target.masked_fill(~valid, 0), reduction="none")
            return _weighted_mean(per_pixel, target, valid, self.class_weights)
        if name == "focal":
            ce = F.cross_entropy(logits, target.masked_fill(~valid, 0), reduction="none")
            focal = (1 - torch.exp(-ce)).pow(FOCAL_GAMMA) * ce
            return focal[valid].mean()
        if name == "lovasz":
            return self.lovasz(logits, target.masked_fill(~valid, -1))  # -1: smp's ignore
        m = valid.unsqueeze(1).float()
        if name == "cldice":
            fg = F.one_hot(target.masked_fill(~valid, 0), self.channels)[..., 1:]
            return cldice_loss(logits.softmax(1)[:, 1:] * m, fg.permute(0, 3, 1, 2).float() * m)
        onehot = F.one_hot(target.masked_fill(~valid, 0), self.channels).permute(0, 3, 1, 2)
        return self.region[name](logits.softmax(1) * m, onehot.float() * m)


def soft_skeleton(prob: Tensor, iterations: int = CLDICE_ITERATIONS) -> Tensor:
    """Differentiable skeleton of probabilities (N, C, H, W): repeated soft erosions
    (min pooling) keep what each opening removes (Shit et al. 2021)."""

    def erode(x: Tensor) -> Tensor:
        return torch.minimum(
            -F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1))
        )

    def opening(x: Tensor) -> Tensor:
        return F.max_pool2d(erode(x), 3, 1, 1)

    skeleton = F.relu(prob - opening(prob))
    for _ in range(iterations):
        prob = erode(prob)
        delta = F.relu(prob - opening(prob))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def cldice_loss(prob: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """``1 -`` clDice of foreground probabilities and binary targets, both (N, C, H, W)."""
    skel_pred, skel_true = soft_skeleton(prob), soft_skeleton(target)
    precision = ((skel_pred * target).sum() + smooth) / (skel_pred.sum() + smooth)
    sensitivity = ((skel_true * prob).sum() + smooth) / (skel_true.sum() + smooth)
    return 1.0 - 2.0 * precision * sensitivity / (precision + sensitivity)


def _weighted_mean(
    per_pixel: Tensor, classes: Tensor, valid: Tensor, class_weights: Tensor | None
) -> Tensor:
    """Mean of ``per_pixel`` over valid pixels, weighted by the weight of each true class."""
    if class_weights is None:
        return per_pixel[valid].mean()
    w = class_weights[classes[valid].long()]
    return (per_pixel[valid] * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


def build_loss(
    weights: Mapping[str, float] | None,
    *,
    num_classes: int,
    class_weights: Sequence[float] | None = None,
    ignore_index: int | None = None,
) -> nn.Module:
    """Build the weighted sum of losses configured under ``train.loss``.

    Args:
        weights: Loss name (see :data:`LOSSES`) -> weight; None or empty gives
            ``{"bce": 1, "dice": 1}`` for binary and ``{"ce": 1, "dice": 1}`` for multi-class.
        num_classes: Class count including background; 2 means one sigmoid logit channel.
        class_weights: One weight per class, applied to ``bce`` / ``ce``.
        ignore_index: Target value excluded from every loss.

    Returns:
        A module mapping logits (N, K, H, W) and integer targets (N, H, W) to a scalar.

    Raises:
        ConfigError: Unknown loss, ``bce``/``ce`` used for the wrong kind of task, bad weights.
    """
    if num_classes < 2:
        raise ConfigError(f"a segmentation loss needs num_classes >= 2, got {num_classes}")
    binary = num_classes == 2
    if not weights:
        weights = {"bce" if binary else "ce": 1.0, "dice": 1.0}
    for name, weight in weights.items():
        if name not in LOSSES:
            raise ConfigError(
                f"config key 'train.loss.{name}' is not a loss; use {', '.join(LOSSES)}"
            )
        if binary and name == "ce":
            raise ConfigError(
                "config key 'train.loss.ce': binary tasks (2 classes) have one sigmoid logit "
                "channel; use 'bce' instead of 'ce'"
            )
        if not binary and name == "bce":
            raise ConfigError(
                f"config key 'train.loss.bce': this task has {num_classes} classes (softmax); "
                "use 'ce' instead of 'bce'"
            )
        if not _is_weight(weight):
            raise ConfigError(
                f"config key 'train.loss.{name}' must be a finite number >= 0, got {weight!r}"
            )
    positive = {name: float(w) for name, w in weights.items() if w > 0}
    if not positive:
        raise ConfigError("config key 'train.loss' needs at least one weight > 0")
    if class_weights is not None:
        class_weights = list(class_weights)
        if len(class_weights) != num_classes:
            raise ConfigError(
                f"config key 'train.class_weights' needs {num_classes} weights (one per class), "
                f"got {len(class_weights)}"
            )
        if not all(_is_weight(w) for w in class_weights) or not any(w > 0 for w in class_weights):
            raise ConfigError(
                "config key 'train.class_weights' must be finite numbers >= 0, not all 0"
            )
    return WeightedLoss(
        positive,
        channels=1 if binary else num_classes,
        class_weights=class_weights,
        ignore_index=ignore_index,
    )


class ObjectLoss(nn.Module):
    """Loss of footprint / border / contact models: the binary loss on each channel.

    Targets are the bit-packed masks of :func:`geounet.data.objects.object_target`
    (bit ``k`` is channel ``k``); ``ignore_index`` pixels are excluded from all three.

    Args:
        loss: The binary loss applied to each channel (a one-channel :class:`WeightedLoss`).
        weights: Weight of the footprint, border and contact terms.
        ignore_index: Target value excluded from every term.
    """

    def __init__(
        self, loss: nn.Module, weights: Sequence[float], ignore_index: int | None = None
    ) -> None:
        super().__init__()
        self.loss = loss
        self.weights = [float(w) for w in weights]
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted sum over channels for logits (N, 3, H, W) and bit masks (N, H, W)."""
        if logits.shape[1] != len(self.weights):
            raise ValueError(
                f"object loss expects {len(self.weights)} channels, got {logits.shape[1]}"
            )
        target = target.long()
        ignored = target == self.ignore_index if self.ignore_index is not None else None
        total = logits.new_zeros((), dtype=torch.float32)
        for k, weight in enumerate(self.weights):
            if weight == 0:
                continue
            bit = (target >> k) & 1
            if ignored is not None:
                bit = bit.masked_fill(ignored, self.ignore_index)
            total = total + weight * self.loss(logits[:, k : k + 1], bit)
        return total


def build_object_loss(
    weights: Mapping[str, float] | None,
    channel_weights: Sequence[float],
    *,
    ignore_index: int | None = None,
) -> ObjectLoss:
    """The per-channel loss of a footprint / border / contact model (``objects.weights``)."""
    binary = build_loss(weights, num_classes=2, ignore_index=ignore_index)
    return ObjectLoss(binary, channel_weights, ignore_index=ignore_index)


def _is_weight(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


class SegmentationLoss(nn.Module):
    """BCE + Dice when the model has one output channel, CE + Dice otherwise.

    Args:
        dice_weight: Weight of the Dice term (the cross-entropy term has weight 1).
    """

    def __init__(self, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.by_channels = nn.ModuleDict()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss for logits (N, K, H, W) and integer targets (N, H, W)."""
        k = logits.shape[1]
        if str(k) not in self.by_channels:
            weights = {"bce" if k == 1 else "ce": 1.0, "dice": self.dice_weight}
            weights = {name: w for name, w in weights.items() if w != 0}
            self.by_channels[str(k)] = WeightedLoss(weights, channels=k)
        return self.by_channels[str(k)](logits, target)
