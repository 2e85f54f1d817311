"""``geounet predict``: segment scenes, chips, volumes or slices with a trained model."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from geounet.cli.options import (
    describe_features,
    device_option,
    make_vectorize_options,
    precision_option,
    progress_bar,
    vector_options,
)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("scenes", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output file (.tif for scenes; .png/.tif for chips; .nii.gz for volumes); with "
    "several inputs or a folder, a directory.",
)
@click.option(
    "--tile-size",
    type=click.IntRange(min=16),
    default=None,
    help="Window size in pixels [up to 1024, shrunk to fit the scene evenly].",
)
@click.option(
    "--overlap", type=click.IntRange(min=0), default=None, help="Window overlap in pixels [64]."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Windows per forward pass [1 on CPUs, 4 on GPUs].",
)
@click.option(
    "--compile",
    "compile_mode",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Compile the model (torch.compile; the code is cached for later runs): auto does "
    "when the scene is large enough to repay it.",
)
@click.option(
    "--no-resample",
    is_flag=True,
    help="Predict at the scene's resolution even if the model was trained at another one.",
)
@click.option("--tta", is_flag=True, help="Average over flips and 90-degree rotations (8x work).")
@click.option(
    "--probabilities",
    is_flag=True,
    help="Also write OUT_proba.tif: one uint8 band (0-255) of probability per class.",
)
@click.option(
    "--vector",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also vectorize the class map into this file (.geojson, .gpkg, .fgb, ...): one "
    "polygon per object for object models; the options below shape the polygons.",
)
@click.option(
    "--cluster",
    metavar="local:N",
    default=None,
    help="Spread the scenes over N worker processes on this machine (Dask); large scenes "
    "go in row bands. Outputs equal one process's; finished ones are skipped on rerun.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Run on an existing Dask cluster: tcp://host:8786 or a scheduler file (.json).",
)
@click.option(
    "--band-rows",
    type=click.IntRange(min=1),
    default=None,
    help="With --cluster/--scheduler: rows per band of a large scene [about 2^28 px a band].",
)
@vector_options
@device_option
@precision_option
@click.pass_context
def predict(
    ctx: click.Context,
    model: str,
    scenes: tuple[str, ...],
    output: str,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int | None,
    compile_mode: str,
    no_resample: bool,
    tta: bool,
    probabilities: bool,
    vector: str | None,
    cluster: str | None,
    scheduler: str | None,
    band_rows: int | None,
    device: str,
    precision: str,
    vector_crs: str | None,
    **shared: Any,
) -> None:
    """Segment SCENES with MODEL; write class maps on the inputs' grids.

    \b
    GeoTIFF models: scenes or VRTs -> Cloud-Optimized GeoTIFFs. For models trained on
    stacked dates (pre/post disaster), join each scene's rasters with commas: pre.tif,post.tif.
    Chip models: a chip or a folder of chips -> palette PNG (or .tif).
    Volume models: a case folder, or its modality files joined by commas -> .nii.gz on the
    input's affine. Slice models (.mat): a file or a folder of them -> .png.
    """
    import geounet.api as gu

    if vector and len(scenes) > 1:
        raise click.UsageError("--vector takes one scene; vectorize several masks one by one")
    if vector:
        gu.check_vector_output(vector, crs=vector_crs, inputs=[model, *scenes, output])
        if gu.model_info(model)["source"] != "geotiff":
            raise click.UsageError(
                "--vector needs georeferenced output: this model predicts chips, volumes or "
                "slices; predict GeoTIFF scenes with a model trained on them"
            )
    vector_opts = make_vectorize_options(**shared)
    options = gu.PredictOptions(
        tile=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        compile=compile_mode,
        device=device,
        precision=precision,
        resample=not no_resample,
        tta=tta,
    )
    if cluster and scheduler:
        raise click.UsageError("give --cluster or --scheduler, not both")
    if band_rows and not (cluster or scheduler):
        raise click.UsageError("--band-rows splits scenes for --cluster or --scheduler")
    distributed = cluster or scheduler
    # windows of each scene; on a cluster, one bar over the whole job's pixels
    unit, scale = ("px", {"unit_scale": True}) if distributed else ("win", {})
    bars: list = []

    def progress(name: str):
        for bar in bars:
            bar.close()
        bars.clear()

        def update(done: int, total: int) -> None:
            if not bars:  # created at the first report: nothing is drawn before an error
                bars.append(progress_bar(ctx, name, unit, **scale))
            bar = bars[0]
            bar.total = total
            bar.update(done - bar.n)

        return update

    try:
        with gu.cluster(cluster, scheduler) if distributed else contextlib.nullcontext() as client:
            results = gu.predict_many(
                model,
                list(scenes),
                output,
                options,
                probabilities=probabilities,
                progress=progress,
                client=client,
                band_rows=band_rows,
            )
    finally:  # closed before any error line
        for bar in bars:
            bar.close()
    for result in results:
        share = ", ".join(f"{k} {v}" for k, v in result.class_pixels.items())
        when = "finished earlier" if result.reused else f"{result.seconds:.1f} s"
        click.echo(f"{result.path}  ({share} px; {when})")
        if probabilities:
            click.echo(f"{gu.probabilities_path(result.path)}  (class probabilities)")
        if result.instances is not None:
            click.echo(f"{result.instances}  ({result.objects} separate objects)")
    if vector:
        proba = gu.probabilities_path(results[0].path) if probabilities else None
        source = results[0].instances or results[0].path  # objects: one polygon each
        gdf = gu.vectorize(source, vector, vector_opts, probabilities=proba, crs=vector_crs)
        click.echo(f"{vector}  ({describe_features(gdf)})")
