"""write_class_map: a styled COG on exactly the reference grid, written atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp

from geounet.io.raster import raster_info
from geounet.io.write import CLASSES_TAG, class_dtype, default_colors, write_class_map


def _is_cog(path) -> bool:
    try:
        from rio_cogeo.cogeo import cog_validate
    except ImportError:
        with rasterio.open(path) as src:
            return src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    valid, _errors, _warnings = cog_validate(str(path))
    return valid


def _grid(geotiff, height, width, **kwargs):
    return raster_info(geotiff(np.zeros((1, height, width), dtype="uint8"), **kwargs))


def test_class_dtype():
    assert class_dtype(2) == "uint8"
    assert class_dtype(254) == "uint8"
    assert class_dtype(255) == "uint16"
    assert class_dtype(1000) == "uint16"


def test_output_on_exact_grid_with_tags_and_colours(geotiff, tmp_path, rng):
    grid = _grid(geotiff, 37, 53, res=0.3, origin=(500123.25, 4100456.75), crs="EPSG:32633")
    classes = rng.integers(0, 3, size=grid.shape, dtype=np.int64)
    colors = [(0, 0, 0), (200, 10, 20), (30, 40, 250)]
    out = write_class_map(
        tmp_path / "out" / "classes.tif",
        classes,
        grid,
        class_names=["background", "building", "road"],
        colors=colors,
    )
    assert out == tmp_path / "out" / "classes.tif"
    with rasterio.open(out) as src:
        assert src.crs == grid.crs
        assert src.transform == grid.transform
        assert (src.width, src.height) == (53, 37)
        assert src.count == 1
        assert src.dtypes[0] == "uint8"
        assert src.nodata == 255
        np.testing.assert_array_equal(src.read(1), classes)
        assert json.loads(src.tags()[CLASSES_TAG]) == ["background", "building", "road"]
        assert src.colorinterp[0] == ColorInterp.palette
        cmap = src.colormap(1)
        for i, c in enumerate(colors):
            assert cmap[i][:3] == c
        assert src.descriptions == ("class",)
    assert _is_cog(out)
    # Nothing else beside the output than its GDAL and QGIS styles.
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "classes.qml",
        "classes.tif",
        "classes.tif.aux.xml",
    ]


def test_palette_has_exactly_the_classes_named_with_a_transparent_background(geotiff, tmp_path):
    import xml.etree.ElementTree as ET

    grid = _grid(geotiff, 8, 8)
    names = ["background", "building", "road"]
    out = write_class_map(
        tmp_path / "c.tif", np.zeros(grid.shape, "uint8"), grid, class_names=names
    )
    with rasterio.open(out) as src:  # GDAL reads the sidecar's colour table
        cmap = src.colormap(1)
        assert src.colorinterp[0] == ColorInterp.palette
    assert len(cmap) == 3
    assert cmap[0][3] == 0  # background transparent over the imagery
    assert cmap[1][3] == cmap[2][3] == 255
    band = ET.parse(f"{out}.aux.xml").getroot().find("PAMRasterBand")
    assert [c.text for c in band.find("CategoryNames")] == names
    qml = ET.parse(tmp_path / "c.qml").getroot()
    entries = qml.findall("pipe/rasterrenderer/colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("alpha")) for e in entries] == [
        ("1", "building", "255"),  # background left out: transparent, not in the legend
        ("2", "road", "255"),
    ]
    assert qml.find("pipe/rasterrenderer").get("type") == "paletted"


def test_four_value_colours_keep_an_opaque_background(geotiff, tmp_path):
    grid = _grid(geotiff, 8, 8)
    colors = [[255, 255, 255, 255], [255, 0, 0]]
    out = write_class_map(
        tmp_path / "c.tif",
        np.zeros(grid.shape, "uint8"),
        grid,
        class_names=["background", "building"],
        colors=colors,
    )
    with rasterio.open(out) as src:
        assert src.colormap(1) == {0: (255, 255, 255, 255), 1: (255, 0, 0, 255)}


def test_default_colours_and_custom_nodata(geotiff, tmp_path):
    grid = _grid(geotiff, 16, 16)
    classes = np.full(grid.shape, 7, dtype=np.uint8)
    classes[0, 0] = 1
    out = write_class_map(tmp_path / "c.tif", classes, grid, class_names=["a", "b"], nodata=7)
    with rasterio.open(out) as src:
        assert src.nodata == 7
        assert src.colormap(1)[1][:3] == default_colors(2)[1][:3]
        assert src.read(1)[0, 0] == 1
        assert src.read_masks(1).sum() == 255  # only one valid pixel


def test_many_classes_use_uint16(geotiff, tmp_path):
    grid = _grid(geotiff, 20, 30)
    names = [f"c{i}" for i in range(300)]
    classes = np.arange(600).reshape(20, 30) % 300
    out = write_class_map(tmp_path / "many.tif", classes, grid, class_names=names)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "uint16"
        assert src.nodata == 65535
        np.testing.assert_array_equal(src.read(1), classes)
        assert json.loads(src.tags()[CLASSES_TAG]) == names
    assert _is_cog(out)


def test_large_map_is_tiled_cog_with_overviews(geotiff, tmp_path):
    grid = _grid(geotiff, 1024, 1024)
    classes = np.zeros(grid.shape, dtype=np.uint8)
    classes[256:768, 256:768] = 1
    out = write_class_map(tmp_path / "big.tif", classes, grid, class_names=["bg", "fg"])
    with rasterio.open(out) as src:
        assert src.block_shapes[0] == (512, 512)
        assert src.overviews(1), "a 1024x1024 COG must have overviews"
        assert src.overviews(1)[0] == 2
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
        # Nearest overview resampling keeps class ids.
        ov = src.read(1, out_shape=(512, 512))
        assert set(np.unique(ov)) <= {0, 1}
        assert src.colormap(1)[1][:3] == default_colors(2)[1][:3]
    assert _is_cog(out)


def test_shape_mismatch_raises(geotiff, tmp_path):
    grid = _grid(geotiff, 10, 10)
    with pytest.raises(ValueError, match="shape"):
        write_class_map(tmp_path / "x.tif", np.zeros((10, 11)), grid, class_names=["a", "b"])
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("partial", [False, True])
def test_interrupted_write_leaves_nothing(geotiff, tmp_path, monkeypatch, partial):
    grid = _grid(geotiff, 16, 16)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def broken_copy(src, dst, **kwargs):
        if partial:  # simulate GDAL dying half way through the final file
            with open(dst, "wb") as f:
                f.write(b"II*\x00 partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(rasterio.shutil, "copy", broken_copy)
    with pytest.raises(RuntimeError, match="disk full"):
        write_class_map(out_dir / "c.tif", np.ones(grid.shape), grid, class_names=["a", "b"])
    assert list(out_dir.iterdir()) == []


def test_interrupted_overwrite_keeps_old_file(geotiff, tmp_path, monkeypatch):
    grid = _grid(geotiff, 16, 16)
    out = tmp_path / "c.tif"
    write_class_map(out, np.ones(grid.shape), grid, class_names=["a", "b"])
    before = out.read_bytes()

    def broken_copy(src, dst, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(rasterio.shutil, "copy", broken_copy)
    with pytest.raises(RuntimeError):
        write_class_map(out, np.zeros(grid.shape), grid, class_names=["a", "b"])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.qml",
        "c.tif",
        "c.tif.aux.xml",
        "image.tif",
    ]


def test_overwrite_existing_file(geotiff, tmp_path):
    grid = _grid(geotiff, 16, 16)
    out = tmp_path / "c.tif"
    out.write_text("stale")
    write_class_map(out, np.ones(grid.shape), grid, class_names=["a", "b"])
    write_class_map(out, np.full(grid.shape, 2), grid, class_names=["a", "b", "c"])
    with rasterio.open(out) as src:
        assert (src.read(1) == 2).all()
        assert json.loads(src.tags()[CLASSES_TAG]) == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.qml",
        "c.tif",
        "c.tif.aux.xml",
        "image.tif",
    ]
