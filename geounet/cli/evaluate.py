"""``geounet evaluate``: metrics, a Markdown report and figures for a trained model."""

from __future__ import annotations

import click

from geounet.cli.options import device_option, precision_option


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--image", type=click.Path(), help="Scene, chip, .mat or case folder to score.")
@click.option(
    "--labels",
    type=click.Path(dir_okay=False),
    help="Its labels (vector or mask); with --config, other labels for the config's strips.",
)
@click.option("--label-attribute", default=None, help="Vector attribute holding the class.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="A training config: evaluate on its test strips (validation strips if none).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    type=click.Path(file_okay=False),
    help="Report directory [MODEL's directory/evaluation].",
)
@click.option("--tta", is_flag=True, help="Predict with flips and 90-degree rotations (8x work).")
@click.option(
    "--min-object-m2",
    type=float,
    default=None,
    help="Object scores drop polygons under this area in m2 [under 20 pixels, as SpaceNet].",
)
@device_option
@precision_option
def evaluate(
    model: str,
    image: str | None,
    labels: str | None,
    label_attribute: str | None,
    config_path: str | None,
    output: str | None,
    tta: bool,
    min_object_m2: float | None,
    device: str,
    precision: str,
) -> None:
    """Score MODEL on labelled data; write metrics.json, report.md and PNG figures.

    With --config, chips, volumes and slices are scored case by case (Dice, IoU, HD95 in
    mm) on the config's test cases (validation cases if none); scenes on its test strips,
    against --labels when given (a model trained on sparse labels, scored on dense ones).
    """
    import geounet.api as gu

    if config_path is not None:
        if image is not None:
            raise click.UsageError("give either --image and --labels, or --config")
    elif image is None or labels is None:
        raise click.UsageError("give either --image and --labels, or --config")
    result = gu.evaluate(
        model,
        output,
        image=image,
        labels=labels,
        config=config_path,
        label_attribute=label_attribute,
        options=gu.PredictOptions(device=device, precision=precision, tta=tta),
        min_object_m2=min_object_m2,
    )
    m = result.metrics
    if "cases" in m:
        for region, scores in m["mean"].items():
            click.echo(
                f"{region}: mean Dice {scores['dice']:.4f}, IoU {scores['iou']:.4f}, "
                f"HD95 {_fmt(scores.get('hd95'))} {m['distance_unit']} over {len(m['cases'])} cases"
            )
        for key in ("pixel_error", "adapted_rand_error"):
            if key in m:
                click.echo(f"{key.replace('_', ' ')} {m[key]:.4f}")
        _echo_tasks(m)
        click.echo(f"report:  {result.report_path}")
        click.echo(f"metrics: {result.metrics_path}")
        return
    click.echo(
        f"pixel accuracy {m['pixel_accuracy']:.4f}, mean IoU {m['macro_iou']:.4f} over "
        f"{len(m.get('present_classes', []))} classes present"
    )
    if len(m.get("present_classes", [])) > 2:
        click.echo(
            "  " + ", ".join(f"{n} {m[n]['iou']:.3f}" for n in m["present_classes"] if n in m)
        )
    for name, o in m.get("objects", {}).items():
        click.echo(
            f"{name}: object F1 {o['f1']:.4f} ({o['tp']} of {o['n_true']} true matched, "
            f"{o['n_pred']} predicted; {o['merges']} merges, {o['splits']} splits)"
        )
    _echo_tasks(m)
    click.echo(f"report:  {result.report_path}")
    click.echo(f"metrics: {result.metrics_path}")


def _echo_tasks(m: dict) -> None:
    for key, what in (("xview2", "pixels"), ("xview2_buildings", "buildings")):
        x = m.get(key)
        if x:
            click.echo(
                f"xView2 score ({what}) {x['score']:.4f}: localisation F1 "
                f"{x['localization_f1']:.4f}, damage F1 {x['damage_f1']:.4f}"
            )
    roads = m.get("roads")
    if roads:
        click.echo(
            f"roads: IoU {_fmt(roads['iou'], 4)}, F1 {_fmt(roads['f1'], 4)}, completeness "
            f"{_fmt(roads['completeness'], 3)}, correctness {_fmt(roads['correctness'], 3)}, "
            f"quality {_fmt(roads['quality'], 3)}, APLS {_fmt(roads['apls'], 3)}"
        )


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
