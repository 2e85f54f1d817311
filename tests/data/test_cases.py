"""Shared case handling: labels to classes, normalization, resampling, slices, splits,
training and validation windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geounet.data.cases import (
    Case,
    CaseCrops,
    CaseTiles,
    Preprocess,
    context_stack,
    normalize,
    prepare_case,
    split_cases,
)
from geounet.data.sources import CaseRef, RawCase
from geounet.errors import ConfigError, DataError
from geounet.io.labelmap import IGNORE, LabelSpec, region_classes

BRATS = [[1, 2, 3, 4], [1, 3, 4], [4]]


def test_nested_groups_become_exclusive_classes() -> None:
    raw = np.array([0, 1, 2, 3, 4])
    classes = LabelSpec(4, groups=BRATS).apply(raw, "x")
    # oedema (2) is whole tumour only; necrosis (1) and 3 are core; 4 enhancing
    assert classes.tolist() == [0, 2, 1, 2, 3]
    regions = region_classes(BRATS)
    assert regions == [[1, 2, 3], [2, 3], [3]]
    whole = np.isin(classes, regions[0])
    assert whole.tolist() == [False, True, True, True, True]


def test_label_map_ignore_threshold_and_errors() -> None:
    spec = LabelSpec(3, label_map={1: 0, 2: 1, 3: 2}, ignore_values=[0])
    assert spec.apply(np.array([0, 1, 2, 3]), "m").tolist() == [IGNORE, 0, 1, 2]
    with pytest.raises(DataError, match=r"m\.png: label values \[9\] map to no class"):
        spec.apply(np.array([1, 9]), "m.png")
    assert LabelSpec(2, threshold=128).apply(np.array([0, 100, 200, 255]), "x").tolist() == [
        0,
        0,
        1,
        1,
    ]
    assert LabelSpec(2).apply(np.array([0, 255]), "x").tolist() == [0, 1]
    with pytest.raises(DataError, match="label values"):
        LabelSpec(3).apply(np.array([0, 7]), "x")
    with pytest.raises(ConfigError, match="overlap"):
        LabelSpec(3, groups=[[1, 2], [2, 3]])


def test_zscore_inside_nonzero_mask() -> None:
    image = np.zeros((1, 10, 10), np.float32)
    image[0, 2:8, 2:8] = np.arange(36).reshape(6, 6) + 100
    out = normalize(image, Preprocess(normalize="zscore", mask="nonzero"))
    inside = out[0, 2:8, 2:8]
    assert inside.mean() == pytest.approx(0, abs=1e-5) and inside.std() == pytest.approx(1, 1e-4)
    assert (out[0, :2] == 0).all()
    pct = normalize(image, Preprocess(normalize="percentile", percentiles=(0, 100)))
    assert pct.min() == 0 and pct.max() == pytest.approx(1)


def _raw(shape=(20, 30, 10), spacing=(1.0, 1.0, 2.5)) -> RawCase:
    image = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    label = np.zeros(shape, np.int64)
    label[5:10, 5:15, 2:6] = 1
    return RawCase(CaseRef("a", "a", [Path("a.nii.gz")]), image, label, spacing)


def test_resampling_to_a_target_spacing() -> None:
    case = prepare_case(_raw(), Preprocess(spacing=(2.0, 2.0, 2.5)), LabelSpec(2), dims=3)
    assert case.image.shape == (2, 10, 15, 10) and case.mask.shape == (10, 15, 10)
    assert case.spacing == (2.0, 2.0, 2.5) and case.native_shape == (20, 30, 10)
    assert case.mask.sum() == pytest.approx(5 * 10 * 4 / 4, rel=0.3)


def test_slices_for_2d_models_and_context() -> None:
    case = prepare_case(_raw(), Preprocess(slice_axis=2), LabelSpec(2), dims=2)
    assert case.image.shape == (2, 10, 20, 30) and case.slice_axis == 2
    assert case.spacing == (2.5, 1.0, 1.0)
    stack = context_stack(case.image, 0, 1)
    assert stack.shape == (6, 20, 30)
    assert np.array_equal(stack[0], case.image[0, 0])  # the end slice repeated
    assert np.array_equal(stack[2], case.image[0, 1])
    with pytest.raises(DataError, match="3D model needs volumes"):
        prepare_case(
            RawCase(CaseRef("b", "b", [Path("b.png")]), np.zeros((1, 8, 8)), None, (1.0, 1.0)),
            Preprocess(),
            None,
            dims=3,
        )


def test_split_by_group_never_leaks() -> None:
    refs = [CaseRef(f"s{i}", f"p{i // 3}", [Path(f"{i}")]) for i in range(30)]
    train, val, test = split_cases(refs, val_fraction=0.2, test_fraction=0.2, seed=1)
    groups = [{r.group for r in part} for part in (train, val, test)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2])
    assert len(train) + len(val) + len(test) == 30 and len(val) == 6
    ordered = split_cases(
        [CaseRef(str(i), str(i), [Path(f"{i}")]) for i in range(25)],
        val_fraction=0.2,
        ordered=True,
    )
    assert [r.id for r in ordered[1]] == ["20", "21", "22", "23", "24"]
    with pytest.raises(DataError, match="at least two"):
        split_cases(refs[:1], val_fraction=0.2)


def _case(shape=(40, 40), fg=(slice(30, 34), slice(30, 34))) -> Case:
    image = np.zeros((1, *shape), np.float32)
    mask = np.zeros(shape, np.int64)
    mask[fg] = 1
    raw = RawCase(CaseRef("c", "c", [Path("c")]), image, mask, (1.0, 1.0))
    return Case("c", "c", image, mask, (1.0, 1.0), raw)


def test_foreground_oversampling() -> None:
    case = _case()
    hits = [
        CaseCrops([case], (8, 8), length=200, seed=0, foreground_fraction=f)[i]["mask"].sum() > 0
        for f in (0.0, 1.0)
        for i in range(200)
    ]
    uniform, focused = np.mean(hits[:200]), np.mean(hits[200:])
    assert focused > 0.95 and uniform < 0.3


def test_small_cases_are_padded_with_ignore() -> None:
    case = _case(shape=(10, 12), fg=(slice(2, 4), slice(2, 4)))
    item = CaseCrops([case], (16, 16), length=1)[0]
    assert item["image"].shape == (1, 16, 16)
    assert (item["mask"][10:] == IGNORE).all() and (item["mask"][:, 12:] == IGNORE).all()
    tiles = CaseTiles([_case()], (16, 16))
    assert len(tiles) == 9
    covered = np.zeros((40, 40), int)
    for _, starts in tiles.items:
        covered[starts[0] : starts[0] + 16, starts[1] : starts[1] + 16] += 1
    assert covered.min() >= 1


def test_crop_sampler_is_fresh_each_epoch_and_repeatable() -> None:
    from geounet.data.cases import CropSampler

    sampler = CropSampler(5, seed=3)
    first = list(sampler)
    assert len(first) == 5 and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_label_map_class_ids_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"class ids \[4\] are not in 0\.\.2"):
        LabelSpec(3, label_map={1: 0, 2: 4}).apply(np.array([1, 2]), "m.png")


def test_strips_split_every_chip_along_its_long_axis() -> None:
    from geounet.data.cases import crop_strip, strip_split, strip_window

    refs = [CaseRef("0", "0", [Path("0.png")], Path("m0.png")), CaseRef("2", "2", [], None)]
    train, val, test = strip_split(refs, val_fraction=0.25)
    assert [r.id for r in train] == ["0", "2"] and [r.id for r in val] == ["0", "2"]
    assert test == [] and val[0].extra["strip"] == (0.75, 1.0)
    assert strip_window((3, 40, 100), (0.75, 1.0)) == (slice(None), slice(75, 100))
    assert strip_window((3, 100, 40), (0.0, 0.75)) == (slice(0, 75), slice(None))
    image = np.arange(2 * 8 * 16, dtype=np.float32).reshape(2, 8, 16)
    mask = np.arange(8 * 16).reshape(8, 16)
    raw = RawCase(refs[0], image, mask, (1.0, 1.0))
    case = Case("0", "0", image, mask, (1.0, 1.0), raw)
    part = crop_strip(case, train[0].extra["strip"])
    assert part.image.shape == (2, 8, 12) and part.mask.shape == (8, 12)
    rest = crop_strip(case, val[0].extra["strip"])
    np.testing.assert_array_equal(np.concatenate([part.mask, rest.mask], 1), mask)
