"""Class colours and the GDAL / QGIS style files written beside outputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from geounet.config import load_config
from geounet.io.style import (
    class_colors,
    default_colors,
    write_probability_style,
    write_vector_style,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_default_colours_follow_the_land_cover_names():
    names = ["background", "Water", "tree cover", "cropland", "built-up", "bare_soil", "thing"]
    colors = default_colors(names)
    assert colors[0][3] == 0  # background transparent
    assert colors[1] == (0, 100, 200, 255)  # water blue
    assert colors[2] == (0, 100, 0, 255)  # forest green
    assert colors[3] == (240, 150, 255, 255)
    assert colors[4] == (250, 0, 0, 255)
    assert colors[5] == (180, 180, 180, 255)
    assert colors[6][3] == 255 and colors[6][:3] not in {c[:3] for c in colors[:6]}
    many = default_colors([f"c{i}" for i in range(40)])
    assert len({c[:3] for c in many}) == 40  # distinct beyond the fixed palette


def test_rgb_background_is_transparent_unless_four_values_are_given():
    assert class_colors(["background", "road"], [[0, 0, 0], [1, 2, 3]]) == [
        (0, 0, 0, 0),
        (1, 2, 3, 255),
    ]
    assert class_colors(["background"], [[9, 9, 9, 255]]) == [(9, 9, 9, 255)]
    assert class_colors(["cell", "membrane"], [[0, 0, 0], [255, 255, 255]])[0][3] == 255


@pytest.mark.parametrize(
    ("preset", "transparent"),
    [
        ("buildings", True),
        ("roads", True),
        ("deepglobe_roads", True),
        ("damage", True),
        ("clouds", True),
        ("crops", True),  # classes from the labels: background by name
        ("landcover", False),
        ("loveda", False),  # LoveDA's background is a land class
        ("isbi2012", False),
    ],
)
def test_presets_with_a_background_leave_the_imagery_visible(preset, transparent):
    data = load_config(CONFIGS / f"{preset}.yaml").data
    names = data.classes if isinstance(data.classes, list) else ["background", "boundary", "x"]
    colors = class_colors(names, data.colors)
    assert (colors[0][3] == 0) is transparent
    assert all(c[3] == 255 for c in colors[1:])  # every other class opaque


def test_probability_style_is_a_graduated_ramp_on_the_first_object_class(tmp_path):
    qml = write_probability_style(tmp_path / "p.tif", ["background", "building"])
    assert qml == tmp_path / "p.qml"
    renderer = ET.parse(qml).getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    assert renderer.get("band") == "2"  # p(building), not background
    items = renderer.findall("rastershader/colorrampshader/item")
    assert [float(i.get("value")) for i in items] == sorted(float(i.get("value")) for i in items)
    assert items[0].get("alpha") == "0" and items[-1].get("value") == "255"
    assert "building" in items[-1].get("label")


def test_line_layers_get_line_symbols(tmp_path):
    qml = write_vector_style(
        tmp_path / "roads.gpkg",
        "class_name",
        ["background", "road"],
        [(0, 0, 0, 0), (255, 170, 0, 255)],
        "LineString",
    )
    root = ET.parse(qml).getroot()
    symbols = root.findall("renderer-v2/symbols/symbol")
    assert [s.get("type") for s in symbols] == ["line"]
    assert symbols[0].find("layer").get("class") == "SimpleLine"
    assert root.find("layerGeometryType").text == "1"
