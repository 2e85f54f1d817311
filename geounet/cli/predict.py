"""``geounet predict``: segment scenes with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geounet.cli.options import (
    device_option,
    make_vectorize_options,
    precision_option,
    progress_enabled,
    vector_options,
)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("scenes", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output GeoTIFF; with several scenes, a directory receiving SCENE_mask.tif each.",
)
@click.option("--tile-size", type=int, default=None, help="Window size in pixels [512].")
@click.option("--overlap", type=int, default=None, help="Window overlap in pixels [tile/8].")
@click.option("--batch-size", type=int, default=4, show_default=True)
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
    help="Also vectorize the class map into this file (.geojson, .gpkg, .fgb, ...); "
    "the options below shape the polygons.",
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
    batch_size: int,
    no_resample: bool,
    tta: bool,
    probabilities: bool,
    vector: str | None,
    device: str,
    precision: str,
    vector_crs: str | None,
    **shared: Any,
) -> None:
    """Segment SCENES with MODEL; write class maps on the scenes' grids (COG).

    For models trained on stacked dates (pre/post disaster, several dates), give each
    scene's co-registered rasters comma-separated: pre.tif,post.tif.
    """
    import dataclasses

    from tqdm import tqdm

    from geounet.infer.scene import PredictOptions, predict_scene
    from geounet.models.bundle import load_bundle

    if vector and len(scenes) > 1:
        raise click.UsageError("--vector takes one scene; vectorize several masks one by one")
    if vector:
        from geounet.vectorize.export import check_vector_path

        check_vector_path(vector, crs=vector_crs)
    vector_opts = make_vectorize_options(**shared)
    net, meta = load_bundle(model)
    options = PredictOptions(
        tile=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        precision=precision,
        resample=not no_resample,
        tta=tta,
    )
    stacks = [s.split(",") if "," in s else [s] for s in scenes]
    outputs = _outputs([stack[0] for stack in stacks], Path(output))
    for stack, out in zip(stacks, outputs, strict=True):
        scene = stack if len(stack) > 1 else stack[0]
        name = Path(stack[0]).name
        with tqdm(desc=name, unit="win", disable=not progress_enabled(ctx)) as bar:

            def progress(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            proba = out.with_name(f"{out.stem}_proba{out.suffix}") if probabilities else None
            scene_options = dataclasses.replace(options, probabilities=proba)
            result = predict_scene(net, meta, scene, out, scene_options, progress)
        share = ", ".join(f"{k} {v}" for k, v in result.class_pixels.items())
        click.echo(f"{result.path}  ({share} px; {result.seconds:.1f} s)")
        if proba is not None:
            click.echo(f"{proba}  (class probabilities)")
    if vector:
        from geounet.vectorize.pipeline import vectorize_to_file as run_vectorize

        proba = outputs[0].with_name(f"{outputs[0].stem}_proba{outputs[0].suffix}")
        gdf = run_vectorize(
            outputs[0],
            vector,
            vector_opts,
            probabilities=proba if probabilities else None,
            crs=vector_crs,
        )
        click.echo(f"{vector}  ({len(gdf)} polygons)")


def _outputs(scenes: list[str], output: Path) -> list[Path]:
    if len(scenes) == 1 and not output.is_dir():
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    return [output / f"{Path(s).stem}_mask.tif" for s in scenes]
