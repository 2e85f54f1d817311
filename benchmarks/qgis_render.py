"""Open geounet's outputs in QGIS (headless) and GDAL as a user would, and render them.

Run with the Python that has PyQGIS (Debian: ``apt-get install qgis python3-qgis``), on
the outputs of ``geounet demo`` (or any run with the same file names)::

    .venv/bin/geounet demo --output demo_output
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 benchmarks/qgis_render.py demo_output docs/img

The script predicts the demo's test scene with the demo's model (class map, probabilities,
instances), vectorizes the footprints to GeoPackage, shapefile and GeoJSON with geounet,
loads each layer in QGIS exactly as dragging the file in does (QGIS applies the
``.qml`` beside it), prints what QGIS and GDAL report (renderer, legend entries,
warnings) and renders three pictures with QGIS's own legend: the class map, the
probability raster and the footprints, each over the imagery.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
    page = layout.pageCollection().page(0)
    page.setPageSize(QgsLayoutSize(260, 180, QgsUnitTypes.LayoutMillimeters))
    item = QgsLayoutItemMap(layout)
    item.setLayers(layers)
    item.attemptMove(QgsLayoutPoint(5, 14, QgsUnitTypes.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(160, 160, QgsUnitTypes.LayoutMillimeters))
    item.setExtent(extent_layer.extent())
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
    result = QgsLayoutExporter(layout).exportToImage(str(path), settings)
    if result != QgsLayoutExporter.Success:
        raise SystemExit(f"{path}: QGIS could not render ({result})")
    print(f"  wrote {path}")


def open_layer(path: Path, name: str):
    """A raster or vector layer of ``path``, with its default style (the ``.qml``)."""
    kind = QgsRasterLayer if path.suffix.lower() in (".tif", ".tiff") else QgsVectorLayer
    layer = kind(str(path), name) if kind is QgsRasterLayer else kind(str(path), name, "ogr")
    if not layer.isValid():
        raise SystemExit(f"QGIS cannot open {path}")
    return layer


def main(demo: Path, figures: Path) -> None:
    """Predict the demo's test scene with its model, vectorize, inspect and render the
    outputs (in ``demo/qgis``); pictures to ``figures``."""
    figures.mkdir(parents=True, exist_ok=True)
    outputs = demo / "qgis"
    mask = outputs / "test_mask.tif"
    run(
        str(GEOUNET), "-q", "predict", str(demo / "run" / "model.safetensors"),
        str(demo / "test_scene.tif"), "-o", str(mask), "--probabilities",
    )  # fmt: skip
    proba, instances = outputs / "test_mask_proba.tif", outputs / "test_mask_instances.tif"
    vectors = {}
    for ext in (".gpkg", ".shp", ".geojson"):
        vectors[ext] = outputs / f"footprints{ext}"
        run(
            str(GEOUNET),
            "-q",
            "vectorize",
            str(instances),
            "-o",
            str(vectors[ext]),
            "--probabilities",
            str(proba),
            "--regularize",
            "--min-area",
            "4",
        )
    print("GDAL (command-line tools of this system):")
    print("  " + run("gdalinfo", "--version"))
    info = run("gdalinfo", str(mask))
    band = info[info.index("Band 1") :]
    print("  gdalinfo test_mask.tif:\n    " + "\n    ".join(band.splitlines()))
    ogr = run("ogrinfo", "-so", "-al", str(vectors[".gpkg"]))
    warnings = [line for line in ogr.splitlines() if "Warning" in line or "ERROR" in line]
    print(f"  ogrinfo footprints.gpkg: {len(warnings)} warnings {warnings}")
    fields = run("ogrinfo", "-so", "-al", str(vectors[".shp"])).splitlines()[-6:]
    print(f"  ogrinfo footprints.shp fields: {fields}")

    qgs = QgsApplication([], False)
    qgs.initQgis()
    print(f"QGIS {Qgis.QGIS_VERSION}:")
    scene = demo / "test_scene.tif"
    for path, name in [(mask, "class map"), (proba, "probabilities")] + [
        (p, f"footprints{ext}") for ext, p in vectors.items()
    ]:
        describe(open_layer(path, name))
    render(
        [(mask, "class map"), (scene, "imagery")],
        "Class map over the imagery (background transparent)",
        figures / "qgis_class_map.png",
    )
    render(
        [(proba, "probabilities"), (scene, "imagery")],
        "Probability of 'building' (graduated ramp, 0 transparent)",
        figures / "qgis_probabilities.png",
    )
    render(
        [(vectors[".gpkg"], "footprints"), (scene, "imagery")],
        "Building footprints (GeoPackage, categorized by class)",
        figures / "qgis_footprints.png",
    )
    qgs.exitQgis()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: qgis_render.py DEMO_OUTPUT_DIR FIGURES_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
