"""Tests for the segmentation losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from geounet.train.losses import SegmentationLoss, dice_loss


def _manual_dice(probs: list[float], truth: list[float], eps: float = 1.0) -> float:
    inter = sum(p * t for p, t in zip(probs, truth, strict=True))
    return 1.0 - (2 * inter + eps) / (sum(probs) + sum(truth) + eps)


def test_binary_bce_plus_dice_by_hand() -> None:
    logits_list = [2.0, -1.0, 0.5, -3.0]
    target_list = [1, 0, 0, 1]
    logits = torch.tensor(logits_list).view(1, 1, 2, 2)
    target = torch.tensor(target_list).view(1, 2, 2)
    probs = [1 / (1 + math.exp(-z)) for z in logits_list]
    bce = (
        -sum(
            t * math.log(p) + (1 - t) * math.log(1 - p)
            for p, t in zip(probs, target_list, strict=True)
        )
        / 4
    )
    expected = bce + _manual_dice(probs, [float(t) for t in target_list])
    assert SegmentationLoss()(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_binary_dice_weight() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0]).view(1, 1, 2, 2)
    target = torch.tensor([1, 0, 0, 1]).view(1, 2, 2)
    bce = F.binary_cross_entropy_with_logits(logits, target.float().unsqueeze(1))
    loss0 = SegmentationLoss(dice_weight=0.0)(logits, target)
    assert loss0.item() == pytest.approx(bce.item(), rel=1e-6)


def test_multiclass_ce_plus_dice_by_hand() -> None:
    # 3 classes, 1 image of 1 x 3 pixels.
    pixel_logits = [[1.0, 0.0, -1.0], [0.2, 2.0, 0.1], [0.0, 0.0, 3.0]]
    targets = [0, 2, 2]
    logits = torch.tensor(pixel_logits).T.reshape(1, 3, 1, 3)
    target = torch.tensor(targets).view(1, 1, 3)
    softmax = []
    ce = 0.0
    for z, t in zip(pixel_logits, targets, strict=True):
        e = [math.exp(v) for v in z]
        p = [v / sum(e) for v in e]
        softmax.append(p)
        ce -= math.log(p[t])
    ce /= 3
    dice = (
        sum(
            _manual_dice([p[k] for p in softmax], [float(t == k) for t in targets])
            for k in range(3)
        )
        / 3
    )
    loss = SegmentationLoss()(logits, target)
    assert loss.item() == pytest.approx(ce + dice, rel=1e-5)


def test_perfect_prediction_gives_near_zero_dice() -> None:
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, 4:10, 3:12] = 1
    onehot = F.one_hot(target, 2).permute(0, 3, 1, 2).float()
    assert dice_loss(onehot, onehot).item() == pytest.approx(0.0, abs=1e-6)
    # confident binary logits: the whole loss (BCE + Dice) is close to zero
    logits = (target.float() * 2 - 1).unsqueeze(1) * 30
    assert SegmentationLoss()(logits, target).item() < 1e-3
    # confident multi-class logits
    logits = onehot * 60 - 30
    assert SegmentationLoss()(logits, target).item() < 1e-3


def test_wrong_prediction_has_large_loss() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    logits = ((1 - target.float()) * 2 - 1).unsqueeze(1) * 30
    assert SegmentationLoss()(logits, target).item() > 10


def test_loss_accepts_half_precision_logits_and_backpropagates() -> None:
    logits = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = SegmentationLoss()(logits, target)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad.float()).all()
