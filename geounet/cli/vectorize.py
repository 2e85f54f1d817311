"""``geounet vectorize``: class map to clean polygons (GeoJSON, GPKG, FlatGeobuf, ...)."""

from __future__ import annotations

from typing import Any

import click

from geounet.cli.options import (
    describe_features,
    make_vectorize_options,
    progress_bar,
    vector_options,
)


@click.command()
@click.argument("mask", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output vector file; format from the extension (.geojson, .gpkg, .fgb, .parquet, .shp).",
)
@vector_options
@click.option(
    "--probabilities",
    type=click.Path(dir_okay=False),
    default=None,
    help="Probability raster (predict --probabilities) for a mean confidence per polygon.",
)
@click.option("--window", type=int, default=2048, show_default=True, help="Pixels per window side.")
@click.pass_context
def vectorize(
    ctx: click.Context,
    mask: str,
    output: str,
    probabilities: str | None,
    window: int,
    vector_crs: str | None,
    **shared: Any,
) -> None:
    """Turn the class map MASK into polygons with class, area, perimeter (and confidence),
    or, with --lines (the default for road models' masks), into a road network.

    Areas and lengths are in m2 and m on the ground whatever the raster's CRS. Large
    rasters are read window by window; polygons and lines crossing windows are merged
    exactly. Road networks: the mask's centre lines split at junctions, dead ends under
    --spur pruned, breaks up to --gap bridged, each line with its length_m.

    \b
    Examples:
      geounet vectorize mask.tif -o footprints.geojson --min-area 10 --regularize
      geounet vectorize landcover.tif -o cover.gpkg --simplify 2 --smooth water,forest
      geounet vectorize roads.tif -o roads.gpkg --lines --spur 10 --gap 15
    """
    from geounet.api import vectorize as run

    options = make_vectorize_options(window=window, **shared)
    bars: list = []

    def progress(done: int, total: int) -> None:
        if not bars:  # opened on the first window, so input errors print no bar
            bars.append(progress_bar(ctx, "vectorize", "win", total=total))
            bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        gdf = run(
            mask, output, options, probabilities=probabilities, crs=vector_crs, progress=progress
        )
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"{output}  ({describe_features(gdf)})")
