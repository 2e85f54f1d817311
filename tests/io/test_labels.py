"""read_labels (any OGR format/CRS, class attributes) and rasterize_labels (centre rule)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import DEFAULT_CRS, grid_transform, pixel_box
from shapely.geometry import Point, Polygon

from geounet.errors import InputFileNotFoundError, InvalidVectorError
from geounet.io.labelmap import IGNORE
from geounet.io.labels import rasterize_labels, read_labels

SHAPE = (40, 50)
TRANSFORM = grid_transform()


def _pixel_polygon(coords_rc) -> Polygon:
    """Polygon from (row, col) pixel coordinates (fractional, in pixel units) in UTM."""
    return Polygon([TRANSFORM @ (c, r) for r, c in coords_rc])


def _centres_inside(poly: Polygon) -> np.ndarray:
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    xs, ys = TRANSFORM @ (cols + 0.5, rows + 0.5)
    return shapely.contains_xy(poly, xs, ys)


def _boundary_ring(poly: Polygon) -> np.ndarray:
    """Pixels whose square touches the polygon boundary."""
    ring = np.zeros(SHAPE, dtype=bool)
    boundary = poly.boundary
    for r in range(SHAPE[0]):
        for c in range(SHAPE[1]):
            if pixel_box(r, c, r + 1, c + 1).intersects(boundary):
                ring[r, c] = True
    return ring


def test_geojson_in_4326_lands_on_right_utm_pixels(vector):
    # An irregular polygon with vertices off the pixel centres, defined in UTM pixels.
    poly = _pixel_polygon([(3.2, 4.7), (5.1, 30.3), (22.8, 41.6), (35.4, 20.2), (18.3, 2.9)])
    in_4326 = gpd.GeoSeries([poly], crs=DEFAULT_CRS).to_crs("EPSG:4326").iloc[0]
    path = vector([in_4326], crs="EPSG:4326")

    labels = read_labels(path, crs=DEFAULT_CRS)
    assert labels.crs == DEFAULT_CRS
    assert list(labels.columns) == ["class_id", "geometry"]
    assert labels["class_id"].tolist() == [1]
    mask = rasterize_labels(labels, SHAPE, TRANSFORM)

    expected = _centres_inside(poly).astype(np.uint8)
    assert mask.dtype == np.uint8
    assert mask.shape == SHAPE
    assert 300 < expected.sum() < SHAPE[0] * SHAPE[1] - 300
    diff = mask != expected
    assert not (diff & ~_boundary_ring(poly)).any(), "differences away from the boundary"
    assert diff.sum() <= 3  # a faithful reprojection differs on almost no pixel


@pytest.mark.parametrize("name", ["labels.gpkg", "labels.shp", "labels.fgb"])
def test_other_formats_with_int_class_attribute(vector, name):
    polys = [pixel_box(2, 2, 10, 10), pixel_box(20, 30, 30, 45), pixel_box(35, 0, 40, 5)]
    path = vector(polys, name=name, cls=[1, 2, 0])
    labels = read_labels(path, class_attribute="cls", class_names=["bg", "a", "b"])
    # Class 0 features are kept (with sparse labels they mark labelled background).
    assert sorted(labels["class_id"].tolist()) == [0, 1, 2]
    mask = rasterize_labels(labels, SHAPE, TRANSFORM)
    expected = np.zeros(SHAPE, dtype=np.uint8)
    expected[2:10, 2:10] = 1
    expected[20:30, 30:45] = 2
    np.testing.assert_array_equal(mask, expected)


def test_gpkg_layer_selection(vector, tmp_path):
    path = tmp_path / "multi.gpkg"
    vector([pixel_box(0, 0, 4, 4)], name="multi.gpkg", layer="roads")
    vector([pixel_box(10, 10, 12, 13), pixel_box(0, 0, 1, 1)], name="multi.gpkg", layer="bld")
    assert len(read_labels(path, layer="bld")) == 2
    assert len(read_labels(path, layer="roads")) == 1


def test_class_names_map_to_ids(vector):
    polys = [pixel_box(0, 0, 5, 5), pixel_box(10, 10, 15, 15), pixel_box(20, 20, 25, 25)]
    path = vector(polys, kind=["road", "building", "background"])
    labels = read_labels(
        path, class_attribute="kind", class_names=["background", "building", "road"]
    )
    assert labels["class_id"].tolist() == [2, 1, 0]
    mask = rasterize_labels(labels, SHAPE, TRANSFORM)
    assert (mask[0:5, 0:5] == 2).all()
    assert (mask[10:15, 10:15] == 1).all()
    assert mask.sum() == 25 * 2 + 25 * 1


def test_features_without_a_class_are_skipped_with_one_warning(vector, caplog):
    polys = [pixel_box(0, 0, 5, 5), pixel_box(10, 10, 15, 15)]
    path = vector(polys, kind=["road", None])
    with caplog.at_level("WARNING", logger="geounet"):
        for _ in range(3):  # training and evaluation read the labels several times
            labels = read_labels(path, class_attribute="kind", class_names=["bg", "road"])
            assert labels["class_id"].tolist() == [1, IGNORE]  # not labelled
    assert caplog.text.count("1 feature(s) with no 'kind' value skipped") == 1


def test_without_attribute_every_feature_gets_value(vector):
    path = vector([pixel_box(0, 0, 2, 2), pixel_box(4, 4, 6, 6)])
    labels = read_labels(path, value=3)
    assert labels["class_id"].tolist() == [3, 3]
    assert rasterize_labels(labels, SHAPE, TRANSFORM).sum() == 8 * 3


def test_unknown_class_name_names_values(vector):
    path = vector([pixel_box(0, 0, 2, 2)] * 3, kind=["road", "swimming pool", "lake"])
    with pytest.raises(InvalidVectorError) as info:
        read_labels(path, class_attribute="kind", class_names=["background", "road"])
    message = str(info.value)
    assert "swimming pool" in message
    assert "lake" in message
    assert "'road'" not in message.split("map to no class")[0]
    assert "background" in message  # the known classes are listed


def test_int_ids_out_of_range(vector):
    path = vector([pixel_box(0, 0, 2, 2)], cls=[5])
    with pytest.raises(InvalidVectorError, match=r"\['5'\] .*map to no class"):
        read_labels(path, class_attribute="cls", class_names=["a", "b", "c"])


def test_missing_attribute(vector):
    path = vector([pixel_box(0, 0, 2, 2)], kind=["road"])
    with pytest.raises(InvalidVectorError) as info:
        read_labels(path, class_attribute="landuse", class_names=["bg", "road"])
    assert "landuse" in str(info.value)
    assert "kind" in str(info.value)  # available attributes listed


def test_no_crs(vector):
    path = vector([pixel_box(0, 0, 2, 2)], name="nocrs.shp", crs=None)
    with pytest.raises(InvalidVectorError, match="CRS"):
        read_labels(path)


def test_points_only_file(vector):
    path = vector([Point(452001, 37999), Point(452005, 37990)])
    with pytest.raises(InvalidVectorError, match="polygon"):
        read_labels(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileNotFoundError):
        read_labels(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(InvalidVectorError, match=r"bad\.geojson"):
        read_labels(bad)


def test_all_touched_off():
    # Smaller than a pixel and away from pixel (3, 4)'s centre (3.5, 4.5): burns nothing.
    tiny = pixel_box(3.05, 4.05, 3.4, 4.4)
    labels = gpd.GeoDataFrame({"class_id": [1]}, geometry=[tiny], crs=DEFAULT_CRS)
    assert rasterize_labels(labels, SHAPE, TRANSFORM).sum() == 0
    # The same size around the centre burns exactly that pixel.
    centred = pixel_box(3.3, 4.3, 3.7, 4.7)
    labels = gpd.GeoDataFrame({"class_id": [1]}, geometry=[centred], crs=DEFAULT_CRS)
    mask = rasterize_labels(labels, SHAPE, TRANSFORM)
    assert mask.sum() == 1
    assert mask[3, 4] == 1


def test_overlap_later_feature_wins_and_empty():
    labels = gpd.GeoDataFrame(
        {"class_id": [1, 2]},
        geometry=[pixel_box(0, 0, 4, 4), pixel_box(2, 2, 6, 6)],
        crs=DEFAULT_CRS,
    )
    mask = rasterize_labels(labels, SHAPE, TRANSFORM, dtype="uint16")
    assert mask.dtype == np.uint16
    assert mask[1, 1] == 1
    assert mask[3, 3] == 2
    empty = rasterize_labels(labels.iloc[:0], SHAPE, TRANSFORM)
    assert empty.shape == SHAPE
    assert not empty.any()


def test_float_ids_accepted_and_missing_ids_rejected(vector):
    # Integer ids stored in a real-valued field, e.g. by a desktop GIS.
    path = vector([pixel_box(0, 0, 2, 2), pixel_box(4, 4, 6, 6)], name="f.gpkg", cls=[1.0, 2.0])
    labels = read_labels(path, class_attribute="cls", class_names=["bg", "a", "b"])
    assert labels["class_id"].tolist() == [1, 2]
    # NULL values are "not labelled": skipped with a count, never a crash.
    path = vector([pixel_box(0, 0, 2, 2), pixel_box(4, 4, 6, 6)], name="g.gpkg", cls=[1, None])
    labels = read_labels(path, class_attribute="cls", class_names=["bg", "a", "b"])
    assert labels["class_id"].tolist() == [1, IGNORE]
    assert labels.attrs["null_features"] == 1
    path = vector([pixel_box(0, 0, 2, 2)], name="h.gpkg", cls=[1.5])
    with pytest.raises(InvalidVectorError, match=r"1\.5"):
        read_labels(path, class_attribute="cls", class_names=["bg", "a", "b"])


def test_invalid_polygon_with_spike_burns_only_its_area(vector):
    # A square with a one-pixel-wide spike digitised as a dangling edge: make_valid
    # leaves a line beside the polygon, which must not be burnt.
    o = pixel_box(0, 0, 1, 1).bounds  # (x0, y0, x1, y1) of pixel (0, 0)
    x0, y1 = o[0], o[3]
    r = 0.5  # pixel size
    square_with_spike = Polygon(
        [
            (x0 + 4 * r, y1 - 4 * r),
            (x0 + 8 * r, y1 - 4 * r),
            (x0 + 8 * r, y1 - 8 * r),
            (x0 + 6 * r, y1 - 8 * r),
            (x0 + 6 * r, y1 - 20 * r),  # spike down to row 20
            (x0 + 6 * r, y1 - 8 * r),
            (x0 + 4 * r, y1 - 8 * r),
        ]
    )
    assert not square_with_spike.is_valid
    path = vector([square_with_spike])
    labels = read_labels(path)
    assert set(labels.geom_type) <= {"Polygon", "MultiPolygon"}
    assert labels.crs == DEFAULT_CRS
    mask = rasterize_labels(labels, SHAPE, TRANSFORM)
    expected = np.zeros(SHAPE, dtype=np.uint8)
    expected[4:8, 4:8] = 1
    np.testing.assert_array_equal(mask, expected)
