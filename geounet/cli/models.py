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
    for key, value in record.items():
        click.echo(f"{key:<20} {value}")
    if crs:
        from rasterio.crs import CRS

        click.echo(f"{'crs':<20} {CRS.from_wkt(crs).to_string()}")
