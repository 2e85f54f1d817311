"""``geounet vectorize``: class map to polygons (GeoJSON, GPKG, FlatGeobuf, ...)."""

from __future__ import annotations

import click


@click.command()
@click.argument("mask", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output vector file; format from the extension (.geojson, .gpkg, .fgb, .parquet, .shp).",
)
@click.option(
    "--classes",
    default=None,
    help="Comma-separated class ids to vectorize (default: all but background).",
)
@click.option("--min-area", type=float, default=0.0, show_default=True, help="Minimum area, m2.")
def vectorize(mask: str, output: str, classes: str | None, min_area: float) -> None:
    """Turn the class map MASK into polygons with class name and area in m2."""
    from geounet.api import vectorize as run

    ids = None
    if classes:
        try:
            ids = [int(c) for c in classes.split(",")]
        except ValueError as exc:
            raise click.BadParameter(
                "use comma-separated integers, e.g. 1,2", param_hint="--classes"
            ) from exc
    gdf = run(mask, output, classes=ids, min_area_m2=min_area)
    click.echo(f"{output}  ({len(gdf)} polygons)")
