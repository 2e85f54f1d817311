"""Class colours and the style files written beside outputs for GDAL and QGIS.

Every class map gets two sidecars: ``NAME.tif.aux.xml`` (GDAL's PAM file: a colour table
of exactly the classes, RGBA so that a background class is transparent, and the class
names as GDAL category names, which ``gdalinfo`` and QGIS show) and ``NAME.qml`` (a QGIS
paletted style). Probability rasters get a graduated QGIS style, vector layers a style
categorized by class. QGIS applies ``NAME.qml`` when ``NAME.tif`` (or ``NAME.gpkg``, ...)
is opened or dragged in.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from geounet.io.atomic import write_text

RGBA = tuple[int, int, int, int]

# Colours of common class names, after the ESA WorldCover and NLCD legends, so that a
# land-cover map reads at a glance. Matched on words of the class name, in this order.
_NAMED: tuple[tuple[tuple[str, ...], tuple[int, int, int]], ...] = (
    (("background",), (0, 0, 0)),
    (("cloud",), (255, 255, 255)),
    (("shadow",), (70, 70, 70)),
    (("water", "river", "lake", "sea", "ocean"), (0, 100, 200)),
    (("wetland", "marsh", "swamp"), (0, 150, 160)),
    (("mangrove",), (0, 207, 117)),
    (("forest", "tree", "trees", "wood", "woodland"), (0, 100, 0)),
    (("shrub", "shrubland", "scrub"), (255, 187, 34)),
    (("grass", "grassland", "herbaceous", "meadow", "pasture"), (255, 255, 76)),
    (("crop", "crops", "cropland", "agriculture", "farmland", "field", "fields"), (240, 150, 255)),
    (("road", "roads", "street"), (255, 170, 0)),
    (("building", "buildings", "built", "urban", "developed", "settlement"), (250, 0, 0)),
    (("bare", "barren", "sand", "soil", "sediment", "rock"), (180, 180, 180)),
    (("snow", "ice", "glacier"), (240, 240, 240)),
)
_DISTINCT = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def _words(name: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() else " " for c in name.lower()).split()}


def default_colors(classes: int | Sequence[str]) -> list[RGBA]:
    """Colours for classes without configured ones.

    Known land-cover and object names (water, forest, cropland, building, road, cloud, ...)
    get their customary colours; a class named ``background`` is transparent; the others
    get distinct colours.

    Args:
        classes: The class names, or just their number.
    """
    names = [""] * classes if isinstance(classes, int) else list(classes)
    colors: list[RGBA | None] = []
    for name in names:
        words = _words(name)
        rgb = next((c for keys, c in _NAMED if words & set(keys)), None)
        colors.append(None if rgb is None else (*rgb, 0 if "background" in words else 255))
    used = {c[:3] for c in colors if c is not None}
    spare = [c for c in _DISTINCT if c not in used]
    out: list[RGBA] = []
    for i, color in enumerate(colors):
        if color is None:
            rgb = spare.pop(0) if spare else _generated(i)
            color = (*rgb, 255)
        out.append(color)
    if isinstance(classes, int) and out:
        out[0] = (0, 0, 0, 255)  # unnamed classes: class 0 black, as before
    return out


def _generated(i: int) -> tuple[int, int, int]:
    """A colour for the i-th class once the distinct ones are used up (golden-angle hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.9)
    return round(r * 255), round(g * 255), round(b * 255)


def class_colors(names: Sequence[str], colors: Sequence[Sequence[int]] | None) -> list[RGBA]:
    """RGBA colour of each class: the given ``[r, g, b]`` or ``[r, g, b, a]`` values, or
    :func:`default_colors`. An RGB colour of a class named ``background`` is transparent:
    give four values to keep it opaque."""
    if not colors:
        return default_colors(names)
    out = []
    for name, color in zip(names, colors, strict=False):
        c = [int(v) for v in color]
        alpha = c[3] if len(c) > 3 else (0 if name.lower() == "background" else 255)
        out.append((c[0], c[1], c[2], alpha))
    return out + default_colors(names)[len(out) :]


def _hex(color: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color[:3])


def _xml(root: ET.Element, *, doctype: bool = False) -> str:
    ET.indent(root)
    return (_DOCTYPE if doctype else "") + ET.tostring(root, encoding="unicode") + "\n"


def style_path(path: str | os.PathLike[str]) -> Path:
    """The QGIS style file QGIS applies to ``path``: the same name with ``.qml``."""
    return Path(path).with_suffix(".qml")


def pam_path(path: str | os.PathLike[str]) -> Path:
    """GDAL's PAM sidecar of ``path`` (``NAME.tif.aux.xml``)."""
    path = Path(path)
    return path.with_name(path.name + ".aux.xml")


def class_map_pam(names: Sequence[str], colors: Sequence[RGBA], description: str = "class") -> str:
    """GDAL PAM XML for a class map: palette of exactly the classes and category names."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    ET.SubElement(band, "Description").text = description
    ET.SubElement(band, "ColorInterp").text = "Palette"
    cats = ET.SubElement(band, "CategoryNames")
    for name in names:
        ET.SubElement(cats, "Category").text = str(name)
    table = ET.SubElement(band, "ColorTable")
    for c in colors:
        ET.SubElement(table, "Entry", c1=str(c[0]), c2=str(c[1]), c3=str(c[2]), c4=str(c[3]))
    return _xml(root)


def _qgis() -> ET.Element:
    """The root of a QGIS style document (QGIS 3.22 reads it, later versions too)."""
    return ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")


def _raster_style(kind: str, band: int, **attributes: str) -> tuple[ET.Element, ET.Element]:
    """A QGIS raster style document and its renderer of ``kind`` on ``band``."""
    root = _qgis()
    renderer = ET.SubElement(
        ET.SubElement(root, "pipe"),
        "rasterrenderer",
        type=kind,
        band=str(band),
        opacity="1",
        alphaBand="-1",
        **attributes,
        nodataColor="",
    )
    ET.SubElement(renderer, "rasterTransparency")
    return root, renderer


def class_map_qml(names: Sequence[str], colors: Sequence[RGBA]) -> str:
    """A QGIS paletted style: one legend entry per class, named and coloured; classes
    with a transparent colour (background) are left out, so they stay see-through and
    the legend lists what the map shows."""
    root, renderer = _raster_style("paletted", 1)
    palette = ET.SubElement(renderer, "colorPalette")
    for i, (name, c) in enumerate(zip(names, colors, strict=True)):
        if c[3] == 0:
            continue
        ET.SubElement(
            palette, "paletteEntry", value=str(i), color=_hex(c), alpha=str(c[3]), label=name
        )
    return _raster_xml(root)


# A perceptual ramp (viridis) for probabilities; p = 0 is transparent so the map can lie
# over the imagery.
_RAMP = ((0.0, (68, 1, 84), 0), (0.1, (68, 1, 84), 0), (0.25, (59, 82, 139), 160))
_RAMP += ((0.5, (33, 145, 140), 220),)
_RAMP += ((0.75, (94, 201, 98), 255), (1.0, (253, 231, 37), 255))


def probability_qml(band: int, name: str) -> str:
    """A QGIS graduated style of one probability band (0-255 stored, shown as 0-1)."""
    root, renderer = _raster_style(
        "singlebandpseudocolor", band, classificationMin="0", classificationMax="255"
    )
    limits = ET.SubElement(renderer, "minMaxOrigin")
    ET.SubElement(limits, "limits").text = "None"
    ET.SubElement(limits, "extent").text = "WholeRaster"
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        colorRampType="INTERPOLATED",
        classificationMode="2",
        clip="0",
        minimumValue="0",
        maximumValue="255",
        labelPrecision="2",
    )
    for p, rgb, alpha in _RAMP:
        label = f"p({name}) = {p:.2f}" if p in (0.0, 1.0) else f"{p:.2f}"
        ET.SubElement(
            shader, "item", value=f"{p * 255:g}", color=_hex(rgb), alpha=str(alpha), label=label
        )
    ET.SubElement(  # the legend's ramp labelled as probabilities, not stored 0-255 values
        shader,
        "rampLegendSettings",
        minimumLabel="0",
        maximumLabel=f"1 (certainly {name})",
        prefix="",
        suffix="",
        direction="0",
        useContinuousLegend="1",
        orientation="2",
    )
    return _raster_xml(root)


def _raster_xml(root: ET.Element) -> str:
    """The style document as text, the rest of QGIS's raster pipe at its defaults."""
    pipe = root[0]  # the pipe, made by _raster_style
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    return _xml(root, doctype=True)


_SYMBOLS = {"fill": "SimpleFill", "line": "SimpleLine", "marker": "SimpleMarker"}


def _symbol(parent: ET.Element, name: str, kind: str, c: RGBA) -> None:
    rgb = ",".join(map(str, c[:3]))
    symbol = ET.SubElement(parent, "symbol", type=kind, name=name, alpha="1", clip_to_extent="1")
    layer = ET.SubElement(
        symbol, "layer", {"class": _SYMBOLS[kind], "pass": "0", "locked": "0", "enabled": "1"}
    )
    props = {
        "fill": {
            "color": f"{rgb},70",
            "style": "solid",
            "outline_color": f"{rgb},255",
            "outline_style": "solid",
            "outline_width": "0.5",
            "outline_width_unit": "MM",
        },
        "line": {
            "line_color": f"{rgb},255",
            "line_style": "solid",
            "line_width": "0.8",
            "line_width_unit": "MM",
            "capstyle": "round",
            "joinstyle": "round",
        },
        "marker": {"color": f"{rgb},255", "size": "2", "name": "circle"},
    }[kind]
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in props.items():
        ET.SubElement(options, "Option", type="QString", name=key, value=value)


def vector_qml(
    field: str, names: Sequence[str], colors: Sequence[RGBA], geometry: str = "Polygon"
) -> str:
    """A QGIS style categorized by ``field``: one symbol per class (transparent classes,
    such as background, are left out), outlined polygons or lines."""
    kind = "line" if "Line" in geometry else "marker" if "Point" in geometry else "fill"
    root = _qgis()
    renderer = ET.SubElement(
        root,
        "renderer-v2",
        type="categorizedSymbol",
        attr=field,
        forceraster="0",
        symbollevels="0",
        enableorderby="0",
    )
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    shown = [(n, c) for n, c in zip(names, colors, strict=True) if c[3] > 0]
    for i, (name, color) in enumerate(shown):
        ET.SubElement(categories, "category", value=name, symbol=str(i), label=name, render="true")
        _symbol(symbols, str(i), kind, color)
    geometry_type = {"marker": "0", "line": "1", "fill": "2"}[kind]
    ET.SubElement(root, "layerGeometryType").text = geometry_type
    return _xml(root, doctype=True)


def write_class_map_styles(
    path: str | os.PathLike[str], names: Sequence[str], colors: Sequence[RGBA]
) -> list[Path]:
    """Write the PAM sidecar and the QGIS style of the class map at ``path``."""
    pam = write_text(class_map_pam(names, colors), pam_path(path))
    return [pam, write_text(class_map_qml(names, colors), style_path(path))]


def write_probability_style(path: str | os.PathLike[str], names: Sequence[str]) -> Path:
    """Write the QGIS style of a probability raster: the first class other than
    background (other bands can be picked in QGIS's layer properties)."""
    band = next((i for i, n in enumerate(names) if n.lower() != "background"), 0)
    return write_text(probability_qml(band + 1, names[band]), style_path(path))


def write_vector_style(
    path: str | os.PathLike[str],
    field: str,
    names: Sequence[str],
    colors: Sequence[RGBA],
    geometry: str = "Polygon",
) -> Path:
    """Write the QGIS style of the vector layer at ``path``, categorized by ``field``."""
    return write_text(vector_qml(field, names, colors, geometry), style_path(path))
