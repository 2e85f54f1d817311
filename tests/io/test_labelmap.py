"""Raw label values to classes: codes, names, nodata, NULL attributes, "other" groups."""

from __future__ import annotations

import numpy as np
import pytest

from geounet.errors import ConfigError, DataError
from geounet.io.labelmap import IGNORE, LabelSpec, auto_classes, resolve_label_map

LANDCOVER = ["developed", "agriculture", "forest", "water"]


def test_raster_nodata_is_not_labelled_never_a_class() -> None:
    raw = np.array([-99999.0, 1.0, 2.0, 4.0], dtype=np.float32)
    spec = LabelSpec(4, label_map={1: 0, 2: 1, 3: 2, 4: 3})
    assert spec.apply(raw, "strata.tif", nodata=-99999).tolist() == [IGNORE, 0, 1, 3]
    # without the declared nodata the fill value is a code like any other: named
    with pytest.raises(DataError, match=r"strata\.tif: label values \[-99999\.0\]"):
        spec.apply(raw, "strata.tif")


def test_a_255_nodata_on_a_class_map_is_not_a_class() -> None:
    raw = np.array([[0, 1, 2], [255, 255, 1]], dtype=np.uint8)
    out = LabelSpec(3).apply(raw, "mask.tif", nodata=255)
    assert out.tolist() == [[0, 1, 2], [IGNORE, IGNORE, 1]]


def test_float_codes_are_integers_and_fractions_an_error() -> None:
    assert LabelSpec(3).apply(np.array([0.0, 2.0]), "m.tif").tolist() == [0, 2]
    with pytest.raises(DataError, match=r"m\.tif: label values \[0\.5\] are not class codes"):
        LabelSpec(3).apply(np.array([0.5, 2.0]), "m.tif")


def test_codes_group_into_classes_and_other_collects_the_rest() -> None:
    spec = LabelSpec(
        3,
        label_map=resolve_label_map(
            {41: "forest", 42: "forest", 11: "water"}, ["other", "forest", "water"]
        ),
        other=0,
    )
    raw = np.array([41, 42, 11, 90, 95])
    assert spec.apply(raw, "nlcd.tif").tolist() == [1, 1, 2, 0, 0]


def test_label_map_targets_must_be_classes() -> None:
    assert resolve_label_map({1: "water", "2": 0}, LANDCOVER) == {1: 3, "2": 0}
    with pytest.raises(ConfigError, match=r"'data\.label_map\.5': 'wetland' is not one"):
        resolve_label_map({5: "wetland"}, LANDCOVER)


def test_attribute_values_names_codes_and_nulls() -> None:
    spec = LabelSpec(4, names=tuple(LANDCOVER))
    ids, nulls = spec.map_values(["forest", None, float("nan"), 3, "1"], "plots.shp")
    assert ids.tolist() == [2, IGNORE, IGNORE, 3, 1]
    assert nulls == 2
    with pytest.raises(DataError, match=r"plots\.shp: values \['wetland'\] \(1 feature"):
        spec.map_values(["wetland", "forest"], "plots.shp")


def test_attribute_codes_through_a_label_map_with_other() -> None:
    classes = ["background", "barley", "maize", "other"]
    spec = LabelSpec(
        4,
        label_map=resolve_label_map({"Vårbyg": "barley", 216: "maize"}, classes),
        other=3,
        names=tuple(classes),
    )
    ids, _ = spec.map_values(["Vårbyg", "216", 216.0, "Ærter"], "marker.shp")
    assert ids.tolist() == [1, 2, 2, 3]


def test_rare_values_are_grouped_into_other_by_area_share() -> None:
    values = ["barley", "barley", "maize", "peas", None, "carrots"]
    areas = [40.0, 20.0, 30.0, 4.0, 50.0, 6.0]
    auto = auto_classes(values, areas, min_share=0.05, other="other")
    assert auto.classes == ["background", "barley", "maize", "carrots", "other"]
    assert auto.mapping == {
        "barley": "barley",
        "maize": "maize",
        "carrots": "carrots",
        "peas": "other",
    }
    assert auto.shares["peas"] == pytest.approx(0.04)
    sparse = auto_classes(values, areas, min_share=0.2, other="rest", background=False)
    assert sparse.classes == ["barley", "maize", "rest"]
    with pytest.raises(ConfigError, match="min_class_share"):
        auto_classes(values, areas, min_share=0.9)
