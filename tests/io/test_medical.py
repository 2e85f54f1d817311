"""Chips, NIfTI volumes and figshare .mat slices: reading, writing, bad files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fixtures_cases import AFFINE, figshare_v5, figshare_v73, write_nifti

from geounet.errors import InvalidRasterError
from geounet.io.chips import read_chip, write_chip_classes
from geounet.io.matlab import read_figshare_mat
from geounet.io.nifti import read_volume, write_volume


def test_figshare_v73_is_read_untransposed(tmp_path: Path) -> None:
    s = read_figshare_mat(figshare_v73(tmp_path / "1.mat", size=512, pid="100360"))
    assert s.image.shape == (512, 512) and s.mask.shape == (512, 512)
    rows, cols = np.nonzero(s.mask)
    # the fixture's tumour is taller (rows) at size//3 and wider (cols) at size//2
    assert rows.min() == 512 // 3 and cols.min() == 512 // 2
    assert cols.max() - cols.min() > rows.max() - rows.min()
    assert s.label == 2 and s.pid == "100360"
    assert s.image[s.mask > 0].mean() > s.image[s.mask == 0].mean() + 400


def test_figshare_small_slice_and_v5(tmp_path: Path) -> None:
    small = read_figshare_mat(figshare_v73(tmp_path / "2.mat", size=256))
    assert small.image.shape == (256, 256)
    v5 = read_figshare_mat(figshare_v5(tmp_path / "3.mat", pid="MR0401"))
    assert v5.image.shape == (256, 256) and v5.label == 3 and v5.pid == "MR0401"
    assert v5.mask.sum() == 20 * 40


def test_mat_without_cjdata_is_one_clear_error(tmp_path: Path) -> None:
    import h5py
    from scipy.io import savemat

    with h5py.File(tmp_path / "a.mat", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(InvalidRasterError, match=r"a\.mat: no 'cjdata' struct"):
        read_figshare_mat(tmp_path / "a.mat")
    savemat(tmp_path / "b.mat", {"x": 1})
    with pytest.raises(InvalidRasterError, match=r"b\.mat: no 'cjdata' struct"):
        read_figshare_mat(tmp_path / "b.mat")
    (tmp_path / "c.mat").write_bytes(b"not matlab at all")
    with pytest.raises(InvalidRasterError, match=r"c\.mat"):
        read_figshare_mat(tmp_path / "c.mat")


def test_nifti_round_trip_keeps_affine_and_spacing(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((10, 12, 6)).astype(np.float32)
    vol = read_volume(write_nifti(tmp_path / "img.nii.gz", data))
    assert vol.spacing == pytest.approx((0.9, 1.1, 2.5))
    assert np.allclose(vol.affine, AFFINE)
    assert vol.axial_axis == 2
    classes = (data > 0.5).astype(np.uint8)
    out = write_volume(tmp_path / "out" / "seg.nii.gz", classes, vol)
    back = read_volume(out)
    assert np.array_equal(back.data, classes) and np.allclose(back.affine, AFFINE)
    assert back.data.dtype == np.uint8
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_nifti_rejects_2d_and_garbage(tmp_path: Path) -> None:
    (tmp_path / "bad.nii.gz").write_bytes(b"garbage")
    with pytest.raises(InvalidRasterError, match=r"bad\.nii\.gz: not a readable NIfTI"):
        read_volume(tmp_path / "bad.nii.gz")
    path = write_nifti(tmp_path / "four.nii.gz", np.zeros((4, 4, 4, 3), np.float32))
    with pytest.raises(InvalidRasterError, match="one modality per file"):
        read_volume(path)
    assert read_volume(path, allow_4d=True).data.shape == (4, 4, 4, 3)


def test_chip_png_palette_and_tif(tmp_path: Path) -> None:
    from PIL import Image

    classes = np.zeros((20, 30), np.uint8)
    classes[5:10, 3:9] = 2
    colors = [[0, 0, 0], [10, 20, 30], [250, 0, 0]]
    png = write_chip_classes(tmp_path / "c.png", classes, colors=colors)
    with Image.open(png) as img:
        assert img.mode == "P"
        assert img.getpalette() == [0, 0, 0, 10, 20, 30, 250, 0, 0]  # exactly the classes
        assert "transparency" not in img.info
        assert np.array_equal(np.asarray(img), classes)
    named = write_chip_classes(
        tmp_path / "n.png", classes, colors=colors, class_names=["background", "b", "c"]
    )
    with Image.open(named) as img:
        assert img.info["transparency"] == 0  # palette index 0 (background) see-through
    tif = write_chip_classes(
        tmp_path / "c.tif", classes, colors=colors, class_names=["a", "b", "c"]
    )
    assert np.array_equal(read_chip(tif)[0], classes)
    assert (tmp_path / "c.qml").is_file() and (tmp_path / "c.tif.aux.xml").is_file()
    with pytest.raises(InvalidRasterError, match=r"\.png or \.tif"):
        write_chip_classes(tmp_path / "c.bmp", classes, colors=colors)


def test_chip_reader_errors(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(InvalidRasterError, match=r"x\.png: not a readable image"):
        read_chip(tmp_path / "x.png")


def test_4d_input_grid_writes_a_3d_class_volume(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "four.nii.gz", np.zeros((4, 5, 6, 2), np.float32))
    grid = read_volume(path, allow_4d=True)
    out = write_volume(tmp_path / "seg.nii.gz", np.ones((4, 5, 6), np.uint8), grid)
    back = read_volume(out)
    assert back.data.shape == (4, 5, 6) and np.allclose(back.affine, AFFINE)
