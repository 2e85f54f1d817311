"""``geounet models`` and ``geounet info``: the model zoo and a bundle's metadata."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--in-channels", default=3, show_default=True, help="Bands, for parameter counts.")
@click.option("--classes", default=2, show_default=True, help="Output channels, likewise.")
def models(in_channels: int, classes: int) -> None:
    """List every model architecture with its parameter count and a description."""
    from geounet.models.registry import REGISTRY, build_model

    click.echo(f"{'name':<16}{'dims':>5}{'params':>10}  description")
    for spec in REGISTRY.values():
        net = build_model(spec.name, in_channels, classes)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        click.echo(f"{spec.name:<16}{spec.dims:>4}D{params:>9.2f}M  {spec.description}")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON metadata.")
def info(model: str, as_json: bool) -> None:
    """Print the metadata of a model bundle (.safetensors)."""
    import dataclasses

    from geounet.models.bundle import read_meta

    meta = read_meta(model)
    record = dataclasses.asdict(meta)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    crs = record.pop("crs")
    for key, value in record.items():
        click.echo(f"{key:<20} {value}")
    if crs:
        from rasterio.crs import CRS

        click.echo(f"{'crs':<20} {CRS.from_wkt(crs).to_string()}")
