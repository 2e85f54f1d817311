"""Tests for the segmentation losses against independent (numpy / hand) references."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geounet import config
from geounet.errors import ConfigError
from geounet.train.losses import (
    CLDICE_ITERATIONS,
    FOCAL_GAMMA,
    LOSSES,
    TVERSKY_ALPHA,
    TVERSKY_BETA,
    SegmentationLoss,
    build_loss,
)

IGNORE = 255
REGION = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0), "tversky": (TVERSKY_ALPHA, TVERSKY_BETA)}


# ----------------------------------------------------------------- numpy references


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:  # (P, C)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _region(p: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """Mean over classes of 1 - TP / (TP + a FP + b FN); 0 for classes absent from t (C, P)."""
    losses = []
    for pc, tc in zip(p, t, strict=True):
        tp, fp, fn = (pc * tc).sum(), (pc * (1 - tc)).sum(), ((1 - pc) * tc).sum()
        losses.append(1 - tp / (tp + alpha * fp + beta * fn) if tc.sum() > 0 else 0.0)
    return float(np.mean(losses))


def _jaccard_of_set(gt: set[int], wrong: set[int]) -> float:
    """Jaccard loss of the prediction that gets exactly the pixels in ``wrong`` wrong."""
    pred = (gt - wrong) | (wrong - gt)
    union = gt | pred
    return 1 - len(gt & pred) / len(union) if union else 0.0


def _lovasz_extension(errors: np.ndarray, fg: np.ndarray) -> float:
    """Lovasz extension of the Jaccard loss, from explicit set operations (Berman et al.)."""
    gt = {i for i in range(len(fg)) if fg[i]}
    order = np.argsort(-errors, kind="stable")
    total, prev, wrong = 0.0, 0.0, set()
    for i in order:
        wrong.add(int(i))
        cur = _jaccard_of_set(gt, wrong)
        total += errors[i] * (cur - prev)
        prev = cur
    return total


def _soft_skeleton(x: np.ndarray, iterations: int) -> np.ndarray:
    """Soft skeleton of (C, H, W) maps with scipy filters (Shit et al. 2021, Alg. 1)."""
    from scipy import ndimage

    def erode(a):  # min over the vertical and the horizontal 3-pixel line
        return np.minimum(
            ndimage.minimum_filter(a, size=(1, 3, 1), mode="nearest"),
            ndimage.minimum_filter(a, size=(1, 1, 3), mode="nearest"),
        )

    def opening(a):
        return ndimage.maximum_filter(erode(a), size=(1, 3, 3), mode="nearest")

    skel = np.maximum(x - opening(x), 0)
    for _ in range(iterations):
        x = erode(x)
        delta = np.maximum(x - opening(x), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


def _cldice(logits: torch.Tensor, target: torch.Tensor, ignore) -> float:
    """1 - clDice over the batch and the foreground classes, ignored pixels zeroed."""
    z, t = logits.double().numpy(), target.numpy()
    valid = (t != ignore) if ignore is not None else np.ones_like(t, dtype=bool)
    if z.shape[1] == 1:
        p, y = _sigmoid(z[:, 0])[:, None], (t > 0)[:, None].astype(float)
    else:
        e = np.exp(z - z.max(1, keepdims=True))
        p = (e / e.sum(1, keepdims=True))[:, 1:]
        y = np.stack([(t == c) for c in range(1, z.shape[1])], 1).astype(float)
    p, y = p * valid[:, None], y * valid[:, None]
    sp = np.concatenate([_soft_skeleton(a, CLDICE_ITERATIONS) for a in p])
    sy = np.concatenate([_soft_skeleton(a, CLDICE_ITERATIONS) for a in y])
    prec = ((sp * np.concatenate(y)).sum() + 1) / (sp.sum() + 1)
    sens = ((sy * np.concatenate(p)).sum() + 1) / (sy.sum() + 1)
    return float(1 - 2 * prec * sens / (prec + sens))


def reference(name: str, logits: torch.Tensor, target: torch.Tensor, ignore=None, cw=None):
    """Loss ``name`` written out in numpy (float64) for logits (N, K, H, W)."""
    if name == "cldice":
        return _cldice(logits, target, ignore)
    z = logits.double().permute(0, 2, 3, 1).reshape(-1, logits.shape[1]).numpy()
    t = target.reshape(-1).numpy()
    valid = t != ignore if ignore is not None else np.ones_like(t, dtype=bool)
    z, t = z[valid], t[valid]
    if logits.shape[1] == 1:  # binary: sigmoid, foreground = target > 0
        z, y = z[:, 0], (t > 0).astype(float)
        p = _sigmoid(z)
        pt = np.where(y == 1, p, 1 - p)
        if name == "bce":
            w = np.ones_like(y) if cw is None else np.asarray(cw)[y.astype(int)]
            return float((w * -np.log(pt)).sum() / w.sum())
        if name == "focal":
            return float(np.mean(-((1 - pt) ** FOCAL_GAMMA) * np.log(pt)))
        if name == "lovasz":
            return _lovasz_extension(np.maximum(1 - z * (2 * y - 1), 0), y)
        return _region(p[None], y[None], *REGION[name])
    k = logits.shape[1]
    p = _softmax(z)
    onehot = np.eye(k)[t]
    pt = p[np.arange(len(t)), t]
    if name == "ce":
        w = np.ones(len(t)) if cw is None else np.asarray(cw)[t]
        return float((w * -np.log(pt)).sum() / w.sum())
    if name == "focal":
        return float(np.mean(-((1 - pt) ** FOCAL_GAMMA) * np.log(pt)))
    if name == "lovasz":
        present = [c for c in range(k) if onehot[:, c].any()]
        return float(
            np.mean(
                [_lovasz_extension(np.abs(onehot[:, c] - p[:, c]), onehot[:, c]) for c in present]
            )
        )
    return _region(p.T, onehot.T, *REGION[name])


def _case(binary: bool, seed: int = 0, ignore: bool = False):
    g = torch.Generator().manual_seed(seed)
    k = 1 if binary else 4
    logits = torch.randn(2, k, 5, 6, generator=g) * 2
    target = torch.randint(0, 2 if binary else 3, (2, 5, 6), generator=g)  # class 3 absent
    if ignore:
        target[torch.rand(2, 5, 6, generator=g) < 0.3] = IGNORE
    return logits, target


def _names(binary: bool) -> list[str]:
    return [n for n in LOSSES if n != ("ce" if binary else "bce")]


ALL_CASES = [(b, n) for b in (True, False) for n in _names(b)]


def _loss(name: str, binary: bool, **kw) -> torch.nn.Module:
    return build_loss({name: 1.0}, num_classes=2 if binary else 4, **kw)


# ----------------------------------------------------------------- values


def test_losses_tuple_matches_config() -> None:
    assert LOSSES == config.LOSSES


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize(("binary", "name"), ALL_CASES)
def test_each_loss_matches_numpy_reference(binary: bool, name: str, ignore: bool) -> None:
    for seed in range(3):
        logits, target = _case(binary, seed, ignore)
        kw = {"ignore_index": IGNORE} if ignore else {}
        got = _loss(name, binary, **kw)(logits, target).item()
        want = reference(name, logits, target, IGNORE if ignore else None)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), (name, seed)


def test_binary_bce_plus_dice_by_hand() -> None:
    logits_list = [2.0, -1.0, 0.5, -3.0]
    target_list = [1, 0, 0, 1]
    logits = torch.tensor(logits_list).view(1, 1, 2, 2)
    target = torch.tensor(target_list).view(1, 2, 2)
    probs = [1 / (1 + math.exp(-z)) for z in logits_list]
    pairs = list(zip(probs, target_list, strict=True))
    bce = -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in pairs) / 4
    dice = 1 - 2 * sum(p * t for p, t in pairs) / (sum(probs) + sum(target_list))
    assert build_loss(None, num_classes=2)(logits, target).item() == pytest.approx(bce + dice)
    assert SegmentationLoss()(logits, target).item() == pytest.approx(bce + dice, rel=1e-5)
    # foreground is target > 0: label 2 counts as 1
    assert SegmentationLoss()(logits, target * 2).item() == pytest.approx(bce + dice, rel=1e-5)


def test_multiclass_ce_plus_dice_by_hand() -> None:
    # 3 classes, 1 image of 1 x 3 pixels; class 1 is absent, so its Dice term is 0.
    pixel_logits = [[1.0, 0.0, -1.0], [0.2, 2.0, 0.1], [0.0, 0.0, 3.0]]
    targets = [0, 2, 2]
    logits = torch.tensor(pixel_logits).T.reshape(1, 3, 1, 3)
    target = torch.tensor(targets).view(1, 1, 3)
    softmax, ce = [], 0.0
    for z, t in zip(pixel_logits, targets, strict=True):
        e = [math.exp(v) for v in z]
        softmax.append([v / sum(e) for v in e])
        ce -= math.log(softmax[-1][t]) / 3
    dice = 0.0
    for k in (0, 2):
        inter = sum(p[k] for p, t in zip(softmax, targets, strict=True) if t == k)
        dice += (1 - 2 * inter / (sum(p[k] for p in softmax) + targets.count(k))) / 3
    assert SegmentationLoss()(logits, target).item() == pytest.approx(ce + dice, rel=1e-5)
    assert build_loss({}, num_classes=3)(logits, target).item() == pytest.approx(ce + dice)


def test_lovasz_hinge_by_hand() -> None:
    # errors 1 - z*s = [-1, 2]; sorted: 2 (Jaccard loss 1/2 when pixel 1 is wrong), then
    # relu(-1) = 0 -> loss = 2 * 1/2 = 1
    logits = torch.tensor([2.0, -1.0]).view(1, 1, 1, 2)
    target = torch.ones(1, 1, 2, dtype=torch.long)
    assert _loss("lovasz", True)(logits, target).item() == pytest.approx(1.0)


def test_focal_by_hand() -> None:
    logits = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    target = torch.tensor([1, 0]).view(1, 1, 2)
    p = 1 / (1 + math.exp(-2.0))
    want = (0.25 * math.log(2) + p**2 * -math.log(1 - p)) / 2  # (1-pt)^2 * -log pt
    assert _loss("focal", True)(logits, target).item() == pytest.approx(want, rel=1e-5)
    # multi-class: focal is the cross-entropy scaled by (1 - p_t)^2 per pixel
    logits = torch.tensor([[1.0, 0.0, -1.0]]).T.reshape(1, 3, 1, 1)
    target = torch.tensor([[[1]]])
    ce = F.cross_entropy(logits, target).item()
    want = (1 - math.exp(-ce)) ** 2 * ce
    assert build_loss({"focal": 1}, num_classes=3)(logits, target).item() == pytest.approx(want)


def test_region_losses_ignore_absent_classes_and_empty_binary_batch() -> None:
    logits, target = _case(False)
    assert not (target == 3).any()
    # smp convention: per-class 1 - Dice, 0 for class 3 (absent), mean over all 4 classes
    p = logits.softmax(1)
    onehot = F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    inter, total = (p * onehot).sum((0, 2, 3)), (p + onehot).sum((0, 2, 3))
    per_class = 1 - 2 * inter / total
    per_class[3] = 0
    got = build_loss({"dice": 1}, num_classes=4)(logits, target)
    assert got.item() == pytest.approx(per_class.mean().item(), rel=1e-5)
    # binary batch without foreground: dice/jaccard/tversky are 0 (undefined otherwise)
    zeros = torch.zeros(2, 5, 6, dtype=torch.long)
    for name in REGION:
        assert _loss(name, True)(logits[:, :1], zeros).item() == 0.0


@pytest.mark.parametrize("binary", [True, False])
def test_perfect_predictions_give_near_zero(binary: bool) -> None:
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, 4:10, 3:12] = 1
    if binary:
        logits = (target.float() * 2 - 1).unsqueeze(1) * 30
    else:
        target[:, 12:, :5] = 2
        logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 60 - 30
    for name in _names(binary):
        value = build_loss({name: 1}, num_classes=2 if binary else 3)(logits, target).item()
        assert 0 <= value < 1e-5, name
        # and the fully wrong prediction is far from 0
        bad = build_loss({name: 1}, num_classes=2 if binary else 3)(-logits, target).item()
        assert bad > 0.5, name
    assert SegmentationLoss()(logits, target).item() < 1e-3


def test_cldice_rewards_connected_roads_over_equal_pixel_errors() -> None:
    """A road cut in two and a road a little too wide are wrong in the same number of
    pixels; only the cut breaks the centre line, which clDice (unlike Dice) sees."""
    target = torch.zeros(1, 32, 64, dtype=torch.long)
    target[:, 14:18, 4:60] = 1
    cut, wide = target.clone(), target.clone()
    cut[:, 14:18, 30:34] = 0  # 16 pixels missing across the road
    wide[:, 18, 10:26] = 1  # 16 pixels too many along its edge
    ratios = {}
    for name in ("dice", "cldice"):
        loss = build_loss({name: 1}, num_classes=2)
        cut_loss, wide_loss = (
            loss(((p.float() * 2 - 1) * 30)[:, None], target) for p in (cut, wide)
        )
        ratios[name] = cut_loss.item() / max(wide_loss.item(), 1e-6)
    assert ratios["dice"] < 1.2  # Dice: about the same
    assert ratios["cldice"] > 3.0, ratios  # clDice: the cut costs far more


# ----------------------------------------------------------------- combination / options


@pytest.mark.parametrize("binary", [True, False])
def test_weights_combine_linearly(binary: bool) -> None:
    logits, target = _case(binary, 1, ignore=True)
    k = 2 if binary else 4
    names = _names(binary)
    single = {
        n: build_loss({n: 1}, num_classes=k, ignore_index=IGNORE)(logits, target) for n in names
    }
    for a, b in itertools.pairwise(names):
        both = build_loss({a: 1, b: 2.5}, num_classes=k, ignore_index=IGNORE)(logits, target)
        assert both.item() == pytest.approx(single[a].item() + 2.5 * single[b].item(), rel=1e-6)
    every = build_loss(dict.fromkeys(names, 0.5), num_classes=k, ignore_index=IGNORE)
    assert every(logits, target).item() == pytest.approx(
        0.5 * sum(v.item() for v in single.values())
    )
    # default = cross-entropy + dice; zero weights drop a term
    ce = "bce" if binary else "ce"
    default = build_loss(None, num_classes=k, ignore_index=IGNORE)(logits, target).item()
    assert default == pytest.approx(single[ce].item() + single["dice"].item(), rel=1e-6)
    zero = build_loss({ce: 1, "dice": 0}, num_classes=k, ignore_index=IGNORE)(logits, target)
    assert zero.item() == pytest.approx(single[ce].item())


def test_class_weights_match_torch_weighted_cross_entropy() -> None:
    logits, target = _case(False, 2, ignore=True)
    cw = [0.2, 1.0, 3.0, 0.5]
    got = build_loss({"ce": 1}, num_classes=4, class_weights=cw, ignore_index=IGNORE)
    want = F.cross_entropy(logits, target, weight=torch.tensor(cw), ignore_index=IGNORE)
    assert got(logits, target).item() == pytest.approx(want.item(), rel=1e-6)
    unweighted = F.cross_entropy(logits, target, ignore_index=IGNORE)
    assert abs(want.item() - unweighted.item()) > 1e-2
    assert want.item() == pytest.approx(reference("ce", logits, target, IGNORE, cw), rel=1e-6)


def test_binary_class_weights_equal_two_class_weighted_cross_entropy() -> None:
    logits, target = _case(True, 3, ignore=True)
    cw = [0.3, 2.0]
    got = build_loss({"bce": 1}, num_classes=2, class_weights=cw, ignore_index=IGNORE)
    two_class = torch.cat([torch.zeros_like(logits), logits], 1)  # sigmoid(z) = softmax(0, z)
    want = F.cross_entropy(two_class, target, weight=torch.tensor(cw), ignore_index=IGNORE)
    assert got(logits, target).item() == pytest.approx(want.item(), rel=1e-6)
    assert want.item() == pytest.approx(reference("bce", logits, target, IGNORE, cw), rel=1e-6)
    # class weights only affect bce / ce
    dice_w = build_loss({"dice": 1}, num_classes=2, class_weights=cw)(logits, target % 2)
    assert dice_w.item() == pytest.approx(_loss("dice", True)(logits, target % 2).item())


@pytest.mark.parametrize(("binary", "name"), ALL_CASES)
def test_ignored_pixels_do_not_affect_the_loss(binary: bool, name: str) -> None:
    logits, target = _case(binary, 4, ignore=True)
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    assert ignored.any()
    loss = _loss(name, binary, ignore_index=IGNORE)
    changed = torch.where(ignored, torch.randn_like(logits) * 10, logits)
    assert loss(changed, target).item() == pytest.approx(loss(logits, target).item(), abs=1e-6)
    x = logits.clone().requires_grad_(True)
    loss(x, target).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[ignored] == 0).all() and (x.grad[~ignored] != 0).any()
    # the ignore value is really excluded: treating it as a label changes the value
    if not binary:
        kept = target.masked_fill(target == IGNORE, 0)
        assert loss(logits, kept).item() != pytest.approx(loss(logits, target).item(), abs=1e-4)


@pytest.mark.parametrize("binary", [True, False])
def test_fully_ignored_batch_gives_zero_with_gradient(binary: bool) -> None:
    logits, _ = _case(binary)
    logits.requires_grad_(True)
    target = torch.full((2, 5, 6), IGNORE)
    k = 2 if binary else 4
    loss = build_loss(dict.fromkeys(_names(binary), 1.0), num_classes=k, ignore_index=IGNORE)
    value = loss(logits, target)
    assert value.item() == 0.0
    value.backward()
    assert (logits.grad == 0).all()


@pytest.mark.parametrize(("binary", "name"), ALL_CASES)
def test_bf16_logits_and_gradients(binary: bool, name: str) -> None:
    logits, target = _case(binary, 5)
    half = logits.bfloat16().requires_grad_(True)
    loss = _loss(name, binary)
    value = loss(half, target)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(loss(half.detach().float(), target).item(), rel=1e-6)
    value.backward()
    assert half.grad is not None and half.grad.dtype == torch.bfloat16
    assert torch.isfinite(half.grad.float()).all() and half.grad.float().abs().sum() > 0


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("weights", "num_classes", "kw", "match"),
    [
        ({"bce": 1}, 3, {}, r"train\.loss\.bce.*use 'ce'"),
        ({"ce": 1}, 2, {}, r"train\.loss\.ce.*use 'bce'"),
        (
            {"dicee": 1},
            3,
            {},
            r"train\.loss\.dicee.*bce, ce, dice, jaccard, focal, tversky, lovasz",
        ),
        ({"dice": -1}, 3, {}, r"train\.loss\.dice"),
        ({"dice": float("nan")}, 3, {}, r"train\.loss\.dice"),
        ({"dice": True}, 3, {}, r"train\.loss\.dice"),
        ({"dice": "1"}, 3, {}, r"train\.loss\.dice"),
        ({"dice": 0}, 3, {}, r"train\.loss"),
        (None, 3, {"class_weights": [1, 2]}, r"train\.class_weights.*3"),
        (None, 2, {"class_weights": [1, -2]}, r"train\.class_weights"),
        (None, 2, {"class_weights": [0, 0]}, r"train\.class_weights"),
        (None, 1, {}, r"num_classes"),
    ],
)
def test_config_errors(weights, num_classes: int, kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_loss(weights, num_classes=num_classes, **kw)
    assert issubclass(ConfigError, ValueError)


def test_logit_channels_must_match_num_classes() -> None:
    logits, target = _case(False)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        build_loss(None, num_classes=2)(logits, target)


# ----------------------------------------------------------------- SegmentationLoss


def test_segmentation_loss_dice_weight_and_channels() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0]).view(1, 1, 2, 2)
    target = torch.tensor([1, 0, 0, 1]).view(1, 2, 2)
    bce = F.binary_cross_entropy_with_logits(logits, target.float().unsqueeze(1))
    assert SegmentationLoss(dice_weight=0.0)(logits, target).item() == pytest.approx(bce.item())
    dice = _loss("dice", True)(logits, target).item()
    assert SegmentationLoss(dice_weight=3.0)(logits, target).item() == pytest.approx(
        bce.item() + 3 * dice, rel=1e-6
    )
    # a 2-channel model is treated as multi-class (softmax CE + Dice over 2 classes)
    two, t2 = _case(False, 6)
    two, t2 = two[:, :2], t2 % 2
    want = reference("ce", two, t2) + reference("dice", two, t2)
    assert SegmentationLoss()(two, t2).item() == pytest.approx(want, rel=1e-5)


def test_wrong_prediction_has_large_loss() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    logits = ((1 - target.float()) * 2 - 1).unsqueeze(1) * 30
    assert SegmentationLoss()(logits, target).item() > 10


def test_segmentation_loss_accepts_half_precision_logits_and_backpropagates() -> None:
    logits = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = SegmentationLoss()(logits, target)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad.float()).all()


def test_object_loss_is_the_binary_loss_of_each_bit() -> None:
    from geounet.train.losses import build_object_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 8, (2, 8, 8))
    target[0, :2] = 255  # ignored in every channel
    loss = build_object_loss(None, [1.0, 0.5, 2.0], ignore_index=255)
    single = build_loss(None, num_classes=2, ignore_index=255)
    expected = 0
    for k, w in enumerate([1.0, 0.5, 2.0]):
        bit = ((target >> k) & 1).masked_fill(target == 255, 255)
        expected = expected + w * single(logits[:, k : k + 1], bit)
    torch.testing.assert_close(loss(logits, target), expected)
    # ignored pixels do not matter
    changed = logits.clone()
    changed[0, :, :2] = 100.0
    torch.testing.assert_close(loss(changed, target), loss(logits, target))
    with pytest.raises(ValueError, match="3 channels"):
        loss(logits[:, :2], target)
