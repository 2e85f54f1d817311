"""``geounet models`` and ``geounet info``: the model zoo and a bundle's metadata."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--in-channels", default=3, show_default=True, help="Bands, for parameter counts.")
@click.option("--classes", default=2, show_default=True, help="Output channels, likewise.")
def models(in_channels: int, classes: int) -> None:
    """List every model architecture with its parameter count and a description."""
    from geounet.api import list_models

    click.echo(f"{'name':<16}{'dims':>5}{'params':>10}  description")
    for row in list_models(in_channels, classes):
        params = row["params"] / 1e6
        click.echo(f"{row['name']:<16}{row['dims']:>4}D{params:>9.2f}M  {row['description']}")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON metadata.")
def info(model: str, as_json: bool) -> None:
    """Print the metadata of a model bundle (.safetensors)."""
    from geounet.api import model_info

    record = model_info(model)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    crs = record.pop("crs")
    labels = record.pop("labels", None) or {}
    for key, value in record.items():
        if value in (None, {}, []) and key not in ("metrics",):
            continue
        click.echo(f"{key:<20} {value}")
    if crs:
        from rasterio.crs import CRS

        click.echo(f"{'crs':<20} {CRS.from_wkt(crs).to_string()}")
    _echo_labels(labels)


def _echo_labels(labels: dict) -> None:
    """How label values became classes: attribute, value -> class (with area shares)."""
    if not labels:
        return
    for key in ("attribute", "sparse", "ignore_values", "class_field", "null_features_skipped"):
        if labels.get(key) not in (None, [], False):
            click.echo(f"{'labels.' + key:<20} {labels[key]}")
    mapping = labels.get("map") or {}
    if not mapping:
        return
    shares = labels.get("shares") or {}
    other = labels.get("other")
    click.echo(
        f"label values -> classes ({len(mapping)} values"
        + (f"; rarer than data.min_class_share grouped into {other!r}" if other else "")
        + "):"
    )
    width = max(len(str(k)) for k in mapping)
    for value, target in sorted(mapping.items(), key=lambda kv: -shares.get(kv[0], 0)):
        share = f"  ({100 * shares[value]:.1f} % of the labelled area)" if value in shares else ""
        click.echo(f"  {value!s:<{width}} -> {target}{share}")
