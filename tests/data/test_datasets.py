"""Tests for the torchgeo scene / label datasets."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_ml import (
    ORIGIN,
    building_scene,
    pixel_box,
    write_geojson,
    write_geotiff,
)

from geounet.data.datasets import SceneImages, labelled_scenes
from geounet.errors import DataError


def _read(ds, row0: int, col0: int, size: int, res: float = 1.0) -> dict:
    """The sample covering pixel rows/cols [row0, row0 + size) of the fixture grid."""
    x0, y0 = ORIGIN
    xmin, ymax = x0 + col0 * res, y0 - row0 * res
    return ds[xmin : xmin + size * res : res, ymax - size * res : ymax : res]


def test_geojson_labels_in_4326_align_with_utm_image(tmp_path: Path) -> None:
    image = np.full((3, 128, 128), 30, dtype=np.uint8)
    image[:, 40:60, 30:50] = 220  # a bright square building
    image[:, 90:100, 100:120] = 200  # another one
    img = write_geotiff(tmp_path / "scene.tif", image)
    boxes = [pixel_box(40, 30, 60, 50), pixel_box(90, 100, 100, 120)]
    labels = write_geojson(tmp_path / "labels.geojson", boxes, to_crs="EPSG:4326")

    ds = labelled_scenes([img], labels, classes=["background", "building"])
    assert ds.crs.to_epsg() == 32633
    sample = _read(ds, 32, 24, 80)
    assert sample["image"].shape == (3, 80, 80)
    assert sample["mask"].shape == (80, 80)
    mask = sample["mask"].numpy()
    expected = np.zeros((128, 128), dtype=np.int64)
    expected[40:60, 30:50] = 1
    expected[90:100, 100:120] = 1
    np.testing.assert_array_equal(mask, expected[32:112, 24:104])
    bright = sample["image"][0].numpy() > 100
    np.testing.assert_array_equal(bright, mask == 1)


def test_generated_scene_masks_match_truth(tmp_path: Path) -> None:
    img, labels, truth = building_scene(tmp_path, size=128, squares=9)
    ds = labelled_scenes([img], labels, classes=["background", "building"])
    sample = _read(ds, 0, 0, 128)
    np.testing.assert_array_equal(sample["mask"].numpy(), truth)
    assert sample["image"].dtype.is_floating_point


def test_raster_mask_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1000, size=(4, 96, 96)).astype(np.uint16)
    img = write_geotiff(tmp_path / "scene.tif", image)
    mask = np.zeros((96, 96), dtype=np.uint8)
    mask[10:30, 5:50] = 1
    mask[60:90, 60:70] = 2
    labels = write_geotiff(tmp_path / "mask.tif", mask)

    ds = labelled_scenes([img], labels, classes=["background", "a", "b"])
    sample = _read(ds, 0, 0, 96)
    np.testing.assert_array_equal(sample["mask"].numpy(), mask)
    np.testing.assert_array_equal(sample["image"].numpy(), image.astype(np.float32))


def test_binary_0_255_mask_labels_become_0_1(tmp_path: Path) -> None:
    img = write_geotiff(tmp_path / "scene.tif", np.zeros((3, 64, 64), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[8:20, 30:60] = 255
    labels = write_geotiff(tmp_path / "mask.tif", mask)
    ds = labelled_scenes([img], labels, classes=["background", "building"])
    np.testing.assert_array_equal(_read(ds, 0, 0, 64)["mask"].numpy(), (mask > 0).astype(int))


def test_multiclass_mask_with_unknown_ids_is_refused(tmp_path: Path) -> None:
    img = write_geotiff(tmp_path / "scene.tif", np.zeros((3, 64, 64), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[:10] = 7
    labels = write_geotiff(tmp_path / "mask.tif", mask)
    with pytest.raises(DataError, match=r"mask.tif: label values \[7\]"):
        labelled_scenes([img], labels, classes=["background", "a", "b"])


def test_class_attribute_names_map_to_ids(tmp_path: Path) -> None:
    image = np.full((3, 64, 64), 50, dtype=np.uint8)
    img = write_geotiff(tmp_path / "scene.tif", image)
    boxes = [pixel_box(5, 5, 20, 20), pixel_box(30, 30, 50, 60), pixel_box(40, 2, 60, 12)]
    labels = write_geojson(tmp_path / "labels.geojson", boxes, kind=["shed", "house", "background"])
    classes = ["background", "house", "shed"]
    ds = labelled_scenes([img], labels, classes=classes, class_attribute="kind")
    mask = _read(ds, 0, 0, 64)["mask"].numpy()
    # the label extent starts at row 5 / col 2; read inside it
    assert (mask[5:20, 5:20] == 2).all()
    assert (mask[30:50, 30:60] == 1).all()
    assert (mask[40:60, 2:12] == 0).all()  # 'background' features are not burnt
    assert set(np.unique(mask)) == {0, 1, 2}


def test_integer_class_attribute(tmp_path: Path) -> None:
    img = write_geotiff(tmp_path / "scene.tif", np.zeros((1, 32, 32), dtype=np.uint8))
    labels = write_geojson(
        tmp_path / "labels.geojson",
        [pixel_box(0, 0, 16, 16), pixel_box(16, 16, 32, 32)],
        cls=[3, 1],
    )
    ds = labelled_scenes([img], labels, classes=["bg", "a", "b", "c"], class_attribute="cls")
    mask = _read(ds, 0, 0, 32)["mask"].numpy()
    assert (mask[:16, :16] == 3).all() and (mask[16:, 16:] == 1).all()
    assert (mask[:16, 16:] == 0).all()


def test_labels_not_overlapping_images(tmp_path: Path) -> None:
    img = write_geotiff(tmp_path / "scene.tif", np.zeros((3, 64, 64), dtype=np.uint8))
    far = pixel_box(0, 0, 10, 10, origin=(ORIGIN[0] + 50_000, ORIGIN[1]))
    labels = write_geojson(tmp_path / "labels.geojson", [far])
    with pytest.raises(DataError, match="do not overlap"):
        labelled_scenes([img], labels, classes=["background", "building"])


def test_mask_raster_not_overlapping_images(tmp_path: Path) -> None:
    img = write_geotiff(tmp_path / "scene.tif", np.zeros((3, 64, 64), dtype=np.uint8))
    mask = write_geotiff(
        tmp_path / "mask.tif",
        np.ones((64, 64), dtype=np.uint8),
        origin=(ORIGIN[0] + 50_000, ORIGIN[1]),
    )
    with pytest.raises(DataError, match="do not overlap"):
        labelled_scenes([img], mask, classes=["background", "building"])


def test_mismatched_band_counts(tmp_path: Path) -> None:
    a = write_geotiff(tmp_path / "a.tif", np.zeros((3, 32, 32), dtype=np.uint8))
    b = write_geotiff(
        tmp_path / "b.tif",
        np.zeros((4, 32, 32), dtype=np.uint8),
        origin=(ORIGIN[0] + 32, ORIGIN[1]),
    )
    labels = write_geojson(tmp_path / "labels.geojson", [pixel_box(0, 0, 32, 64)])
    with pytest.raises(DataError, match="different band counts"):
        labelled_scenes([a, b], labels, classes=["background", "building"])


def test_band_selection(tmp_path: Path) -> None:
    data = np.stack([np.full((16, 16), v, dtype=np.uint16) for v in (1, 2, 3, 4)])
    img = write_geotiff(tmp_path / "scene.tif", data, descriptions=["blue", "green", "red", "nir"])
    ds = SceneImages([img], bands=[4, 3])
    assert ds.all_bands == ("blue", "green", "red", "nir")
    sample = ds[ORIGIN[0] : ORIGIN[0] + 16 : 1.0, ORIGIN[1] - 16 : ORIGIN[1] : 1.0]
    assert sample["image"][:, 0, 0].tolist() == [4.0, 3.0]
    with pytest.raises(DataError, match="out of range"):
        SceneImages([img], bands=[5])
