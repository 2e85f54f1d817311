"""Tests for the confusion-matrix metrics."""

import math

import pytest
import torch

from geounet.train.metrics import ConfusionMatrix, predicted_classes


def test_confusion_matrix_and_iou_by_hand() -> None:
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 1, 0]])
    cm = ConfusionMatrix(3)
    cm.update(pred, truth)
    # rows = truth, columns = prediction
    expected = torch.tensor([[2, 1, 0], [0, 2, 0], [1, 1, 1]])
    assert torch.equal(cm.matrix, expected)
    # IoU_k = tp / (row + col - tp)
    iou = cm.iou()
    assert iou[0].item() == pytest.approx(2 / (3 + 3 - 2))
    assert iou[1].item() == pytest.approx(2 / (2 + 4 - 2))
    assert iou[2].item() == pytest.approx(1 / (3 + 1 - 1))
    assert cm.accuracy() == pytest.approx(5 / 8)
    assert cm.summary_iou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)


def test_update_accumulates() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([1, 0]), torch.tensor([1, 1]))
    cm.update(torch.tensor([[1]]), torch.tensor([[0]]))
    assert torch.equal(cm.matrix, torch.tensor([[0, 1], [1, 1]]))


def test_binary_summary_is_foreground_iou() -> None:
    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])
    cm = ConfusionMatrix(2)
    cm.update(pred, truth)
    # foreground: tp 2, fp 1, fn 1 -> 2/4; background: tp 4, union 6 -> 4/6
    assert cm.summary_iou() == pytest.approx(0.5)
    assert cm.iou()[0].item() == pytest.approx(4 / 6)


def test_absent_classes() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    assert math.isnan(cm.iou()[1].item())
    assert cm.summary_iou() == 0.0  # no foreground anywhere: 0, not NaN
    cm3 = ConfusionMatrix(3)
    cm3.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert cm3.summary_iou() == pytest.approx(1.0)  # absent class 2 ignored by nanmean


def test_predicted_classes() -> None:
    binary = torch.tensor([[[[-0.1, 0.0, 2.0]]]])
    assert predicted_classes(binary).tolist() == [[[0, 0, 1]]]
    multi = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[0.5, 3.0]]]])
    assert predicted_classes(multi).tolist() == [[[0, 2]]]
