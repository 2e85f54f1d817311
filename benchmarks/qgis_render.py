"""Open geounet's outputs in QGIS (headless) and GDAL as a user would, and render them.

Run with the Python that has PyQGIS (Debian: ``apt-get install qgis python3-qgis``) on a
model and a scene, e.g. those of ``geounet demo``::

    .venv/bin/geounet demo --output demo_output
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 benchmarks/qgis_render.py \
        demo_output/run/model.safetensors demo_output/test_scene.tif /tmp/qgis docs/img demo

The script predicts the scene with geounet (class map and probabilities, and the
instance map of object models), vectorizes it to GeoPackage, shapefile and GeoJSON,
loads each file in QGIS exactly as dragging it in does (QGIS applies the ``.qml`` beside
it), prints what QGIS and GDAL report (renderer, legend entries, warnings) and renders
pictures with QGIS's own legend: the class map, the probability raster and the vectors,
each over the imagery (``FIGURES/qgis_NAME_*.png``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsLayoutExporter,
    QgsLayoutItemLabel,
    QgsLayoutItemLegend,
    QgsLayoutItemMap,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsPrintLayout,
    QgsProject,
    QgsRasterLayer,
    QgsUnitTypes,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QFont

REPO = Path(__file__).resolve().parents[1]
GEOUNET = REPO / ".venv" / "bin" / "geounet"


def run(*args: str) -> str:
    """A command's standard output and error together (GDAL's warnings included)."""
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return (done.stdout + done.stderr).strip()


def describe(layer) -> None:
    """Print the renderer QGIS chose and the legend it shows."""
    renderer = layer.renderer()
    kind = renderer.type()
    if isinstance(layer, QgsRasterLayer):
        labels = [label for label, _ in renderer.legendSymbologyItems()]
    else:
        labels = [item.label() for item in renderer.legendSymbolItems()]
    print(f"  QGIS {layer.name()}: renderer {kind}; legend {labels}")


def render(sources: list[tuple[Path, str]], title: str, path: Path) -> None:
    """A layout with the map (layers over each other, the first on top; extent of the
    first) and QGIS's legend, as PNG. Each layer is opened fresh, as dragging it in does."""
    project = QgsProject.instance()
    project.clear()
    layers = [open_layer(p, name) for p, name in sources]
    extent_layer = layers[0]
    project.setCrs(extent_layer.crs())
    for layer in layers:
        project.addMapLayer(layer, True)
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    extent = extent_layer.extent()
    height = 160 * min(extent.height() / extent.width(), 1.25)
    page = layout.pageCollection().page(0)
    page.setPageSize(QgsLayoutSize(260, height + 20, QgsUnitTypes.LayoutMillimeters))
    item = QgsLayoutItemMap(layout)
    item.setLayers(layers)
    item.attemptMove(QgsLayoutPoint(5, 14, QgsUnitTypes.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(160, height, QgsUnitTypes.LayoutMillimeters))
    item.setExtent(extent)
    layout.addLayoutItem(item)
    label = QgsLayoutItemLabel(layout)
    label.setText(title)
    label.setFont(QFont("DejaVu Sans", 14))
    label.attemptMove(QgsLayoutPoint(5, 3, QgsUnitTypes.LayoutMillimeters))
    label.attemptResize(QgsLayoutSize(250, 10, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(label)
    legend = QgsLayoutItemLegend(layout)
    legend.setLinkedMap(item)
    legend.setTitle("QGIS legend")
    legend.attemptMove(QgsLayoutPoint(170, 14, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(legend)
    settings = QgsLayoutExporter.ImageExportSettings()
    settings.dpi = 80
    settings.generateWorldFile = False
    settings.exportMetadata = False
    # QGIS tries to georeference the PNG in place, which GDAL's PNG driver refuses
    # ("does not support update access"): harmless, and not shown
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        result = QgsLayoutExporter(layout).exportToImage(str(path), settings)
    finally:
        gdal.PopErrorHandler()
    if result != QgsLayoutExporter.Success:
        raise SystemExit(f"{path}: QGIS could not render ({result})")
    print(f"  wrote {path}")


def open_layer(path: Path, name: str):
    """A raster or vector layer of ``path``, with its default style (the ``.qml``)."""
    kind = QgsRasterLayer if path.suffix.lower() in (".tif", ".tiff", ".vrt") else QgsVectorLayer
    layer = kind(str(path), name) if kind is QgsRasterLayer else kind(str(path), name, "ogr")
    if not layer.isValid():
        raise SystemExit(f"QGIS cannot open {path}")
    return layer


def main(model: Path, scene: str, outputs: Path, figures: Path, name: str) -> None:
    """Predict ``scene`` with ``model`` into ``outputs``, vectorize, inspect and render;
    pictures to ``figures``. A scene of band files (``blue.tif,green.tif,red.tif,...``)
    is shown as a true-colour VRT of its first three files in reverse (red, green, blue)."""
    figures.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    mask = outputs / "classes.tif"
    run(str(GEOUNET), "-q", "predict", str(model), scene, "-o", str(mask), "--probabilities")
    files = scene.split(",")
    image = Path(files[0])
    if len(files) > 1:
        image = outputs / "imagery.vrt"
        run("gdalbuildvrt", "-q", "-separate", str(image), *files[2::-1])
    proba, instances = outputs / "classes_proba.tif", outputs / "classes_instances.tif"
    source = instances if instances.exists() else mask  # objects: one polygon each
    vectors = {}
    for ext in (".gpkg", ".shp", ".geojson"):
        vectors[ext] = outputs / f"vectors{ext}"
        args = ["-o", str(vectors[ext]), "--probabilities", str(proba), "--min-area", "4"]
        if source == instances:
            args.append("--regularize")
        run(str(GEOUNET), "-q", "vectorize", str(source), *args)
    print("GDAL (command-line tools of this system):")
    print("  " + run("gdalinfo", "--version"))
    info = run("gdalinfo", str(mask))
    band = info[info.index("Band 1") :]
    print("  gdalinfo classes.tif:\n    " + "\n    ".join(band.splitlines()))
    ogr = run("ogrinfo", "-so", "-al", str(vectors[".gpkg"]))
    warnings = [line for line in ogr.splitlines() if "Warning" in line or "ERROR" in line]
    print(f"  ogrinfo vectors.gpkg: {len(warnings)} warnings {warnings}")
    fields = run("ogrinfo", "-so", "-al", str(vectors[".shp"])).splitlines()
    kinds = (": Integer", ": String", ": Real")
    print(f"  ogrinfo vectors.shp fields: {[f for f in fields if any(k in f for k in kinds)]}")

    qgs = QgsApplication([], False)
    qgs.initQgis()
    print(f"QGIS {Qgis.QGIS_VERSION}:")
    for path, title in [(mask, "class map"), (proba, "probabilities")] + [
        (p, f"vectors{ext}") for ext, p in vectors.items()
    ]:
        describe(open_layer(path, title))
    first = describe_probability_band(proba)
    render(
        [(mask, "class map"), (image, "imagery")],
        "Class map over the imagery",
        figures / f"qgis_{name}_class_map.png",
    )
    render(
        [(proba, "probabilities"), (image, "imagery")],
        f"Probability {first} (graduated ramp)",
        figures / f"qgis_{name}_probabilities.png",
    )
    render(
        [(vectors[".gpkg"], "vectors (GeoPackage)"), (image, "imagery")],
        "Vectors (GeoPackage), categorized by class",
        figures / f"qgis_{name}_vectors.png",
    )
    qgs.exitQgis()


def describe_probability_band(path: Path) -> str:
    """The band the probability style shows, as its description (``p(building)``)."""
    layer = open_layer(path, "probabilities")
    band = layer.renderer().band()
    return layer.bandName(band).split(": ", 1)[-1]  # "Band 2: p(building)" -> "p(building)"


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit("usage: qgis_render.py MODEL SCENE OUTPUT_DIR FIGURES_DIR NAME")
    model, scene, outputs, figures, name = sys.argv[1:]
    main(Path(model), scene, Path(outputs), Path(figures), name)
