"""Seeded watershed: touching objects split, single shapes kept whole, streaming exact."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from geounet.data.objects import BORDER, CONTACT, object_target
from geounet.errors import ConfigError
from geounet.infer.instances import InstanceParams, InstanceStream, split_instances

PARAMS = InstanceParams(min_seed_px=4, min_object_px=4)


def _oracle(inst: np.ndarray, border: int = 2, contact: int = 3) -> tuple[np.ndarray, ...]:
    """What a perfect model predicts for an instance map: the three target channels."""
    target = object_target(inst, border, contact)
    fp = (inst > 0).astype(np.float32)
    return (
        fp,
        ((target & BORDER) > 0).astype(np.float32),
        ((target & CONTACT) > 0).astype(np.float32),
    )


def _n(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels > 0]))


def test_two_touching_squares_give_two_instances():
    inst = np.zeros((40, 60), np.int32)
    inst[5:30, 5:25], inst[5:30, 25:50] = 1, 2
    labels = split_instances(*_oracle(inst), PARAMS)
    assert _n(labels) == 2
    # each instance is one square, up to the pixels next to the shared edge
    assert (labels[5:30, 5:22] == labels[15, 10]).all()
    assert (labels[5:30, 28:50] == labels[15, 40]).all()
    assert labels[15, 10] != labels[15, 40]
    assert ((labels > 0) == (inst > 0)).all()  # the footprint is covered exactly


def test_dumbbell_with_a_thin_neck_gives_two():
    fp = np.zeros((40, 80), np.float32)
    fp[5:35, 5:30] = fp[5:35, 50:75] = 1
    fp[18:21, 30:50] = 1  # a 3-pixel neck
    border = ((object_target((fp > 0).astype(np.int32), 2, 0) & BORDER) > 0).astype(np.float32)
    labels = split_instances(fp, border, np.zeros_like(fp), PARAMS)
    assert _n(labels) == 2
    assert labels[20, 15] != labels[20, 60]


def test_single_l_shape_gives_one():
    inst = np.zeros((50, 50), np.int32)
    inst[5:45, 5:20] = 1
    inst[30:45, 5:45] = 1
    labels = split_instances(*_oracle(inst), PARAMS)
    assert _n(labels) == 1
    assert ((labels > 0) == (inst > 0)).all()


def test_objects_without_seeds_are_kept_and_tiny_ones_dropped():
    fp = np.zeros((30, 30), np.float32)
    fp[2:12, 2:12] = 0.6  # above the mask threshold, below the seed threshold
    fp[20:22, 20:21] = 0.9  # 2 pixels: under min_object_px
    labels = split_instances(fp, np.zeros_like(fp), np.zeros_like(fp), PARAMS)
    assert _n(labels) == 1 and (labels[2:12, 2:12] == 1).all() and labels[20, 20] == 0


def test_valid_mask_restricts_objects():
    fp = np.ones((10, 10), np.float32)
    valid = np.zeros((10, 10), bool)
    valid[:, :5] = True
    labels = split_instances(fp, 0 * fp, 0 * fp, PARAMS, mask=valid)
    assert (labels[:, 5:] == 0).all() and (labels[:, :5] == 1).all()


def _random_probs(shape, seed):
    rng = np.random.default_rng(seed)
    fp = ndimage.gaussian_filter(rng.random(shape), 4)
    fp = (fp - fp.min()) / (fp.max() - fp.min())
    border = ndimage.gaussian_filter(rng.random(shape), 2)
    border = (border - border.min()) / (border.max() - border.min())
    return fp.astype(np.float32), border.astype(np.float32), np.zeros(shape, np.float32)


@pytest.mark.parametrize("bands", [[1] * 90, [7, 13, 50, 1, 19], [90]])
def test_streamed_instances_equal_the_whole_raster(bands):
    fp, border, contact = _random_probs((90, 120), seed=3)
    params = InstanceParams(
        mask_threshold=0.45, seed_threshold=0.55, border_threshold=0.5, min_seed_px=3
    )
    whole = split_instances(fp, border, contact, params)
    out = np.full(whole.shape, -1, np.int64)
    rows_seen = []

    def emit(row: int, ids: np.ndarray) -> None:
        rows_seen.append((row, len(ids)))
        out[row : row + len(ids)] = ids

    stream = InstanceStream(whole.shape[1], params, emit)
    r = 0
    for n in bands:
        stream.put(np.stack([fp[r : r + n], border[r : r + n], contact[r : r + n]]))
        r += n
    stream.close()
    assert r == 90 and (out >= 0).all()
    assert [row for row, _ in rows_seen] == sorted(row for row, _ in rows_seen)
    # the same partition of the pixels, up to renumbering
    pairs = set(zip(whole.ravel().tolist(), out.ravel().tolist(), strict=True))
    assert len(pairs) == len(np.unique(whole)) == len(np.unique(out))
    assert stream.count == _n(whole) > 10


def test_params_validation_and_meta():
    with pytest.raises(ConfigError, match="seed_threshold"):
        InstanceParams(seed_threshold=1.5)
    params = InstanceParams.from_meta({"min_area_m2": 4.0, "seed_threshold": 0.8}, 0.25)
    assert params.min_object_px == 16 and params.seed_threshold == 0.8
