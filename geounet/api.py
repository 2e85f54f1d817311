"""The Python API: train, predict, vectorize and evaluate in a few calls.

This module is the only orchestrator: the command line and the demo call it and nothing
below it. It reads configurations; the layers below take plain arguments.

Example:
    >>> import geounet.api as gu
    >>> result = gu.train("configs/buildings.yaml", overrides=["train.max_minutes=5"])
    >>> gu.predict(result.model_path, "scene.tif", "mask.tif")
    >>> footprints = gu.vectorize("mask.tif", "buildings.geojson")
    >>> gu.predict("runs/brain/model.safetensors", "patient_folder", "seg.nii.gz")
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd

from geounet.config import Config, load_config, require_training_inputs
from geounet.infer.scene import PredictOptions, PredictResult
from geounet.models.bundle import ModelMeta, load_bundle, read_meta
from geounet.models.segmenter import Segmenter
from geounet.vectorize import VectorizeOptions

if TYPE_CHECKING:  # lightning is imported by training only: prediction starts faster
    from geounet.train.fit import TrainResult

PathLike = str | os.PathLike[str]
Progress = Callable[[int, int], None]


def train(
    config: PathLike | Config | None = None,
    overrides: Sequence[str] = (),
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a model from a YAML config (or a :class:`Config`) plus ``key=value`` overrides.

    Works for every ``data.source``: GeoTIFF scenes, chip folders, NIfTI cases and
    figshare ``.mat`` slices.
    """
    from geounet.train.fit import fit

    source = None
    if not isinstance(config, Config):
        source, config = config, load_config(config, list(overrides))
    require_training_inputs(config, source, overrides)
    config = _xbd_as_geotiff(config)
    return fit(config, progress=progress)


def _xbd_as_geotiff(config: Config) -> Config:
    """An xBD config (``data.source: xbd``) as the GeoTIFF config it amounts to: each
    pre/post PNG pair georeferenced from its labels' ``lng_lat`` into a date stack, with
    the post-disaster buildings' ``subtype`` (damage) as labels. Other configs as given."""
    if config.data.source != "xbd":
        return config
    from geounet.io.xbd import xbd_scenes

    scenes = xbd_scenes(list(config.data.images), Path(config.run_dir) / "xbd")
    data = dataclasses.replace(
        config.data,
        source="geotiff",
        images=[[str(s.pre), str(s.post)] for s in scenes],
        labels=[str(s.labels) for s in scenes],
        stack="dates",
        label_attribute=config.data.label_attribute or "subtype",
    )
    return dataclasses.replace(config, data=data)


def resume(run_dir: PathLike, *, progress: bool = True) -> TrainResult:
    """Continue an interrupted run from its directory (its resolved config and last.ckpt)."""
    from geounet.errors import InputFileNotFoundError
    from geounet.train.fit import fit

    config_path = Path(run_dir) / "config.yaml"
    if not config_path.exists():
        raise InputFileNotFoundError(f"{config_path}: not a geounet run directory")
    config = load_config(config_path, [f"run_dir={run_dir}"])
    return fit(config, progress=progress, resume=True)


def load_model(path: PathLike) -> tuple[Segmenter, ModelMeta]:
    """Load a ``.safetensors`` model bundle (no pickle involved)."""
    return load_bundle(path)


def model_info(path: PathLike) -> dict[str, Any]:
    """A bundle's metadata as plain data (fast: no weights are read)."""
    return dataclasses.asdict(read_meta(path))


def list_models(in_channels: int = 3, classes: int = 2) -> list[dict[str, Any]]:
    """Every registered architecture: name, dims, parameter count, description."""
    from geounet.models.registry import REGISTRY, build_model

    rows = []
    for spec in REGISTRY.values():
        net = build_model(spec.name, in_channels * spec.timesteps, classes)
        params = sum(p.numel() for p in net.parameters())
        rows.append(
            {
                "name": spec.name,
                "dims": spec.dims,
                "params": params,
                "description": spec.description,
            }
        )
    return rows


def predict(
    model: PathLike | tuple[Segmenter, ModelMeta],
    scene: PathLike | Sequence[PathLike],
    out: PathLike,
    options: PredictOptions | None = None,
    progress: Progress | None = None,
) -> PredictResult:
    """Segment one input with ``model`` and write its class map to ``out``.

    For GeoTIFF models ``scene`` is a GeoTIFF or VRT (or a list of co-registered rasters
    stacked as in training) and ``out`` a COG on its grid. For other models it is a chip,
    a NIfTI case (its folder, or its modality files as a list or comma-joined) or a
    ``.mat`` slice, and ``out`` a ``.png``, ``.tif`` or ``.nii.gz`` on the input's grid.
    Models of separate objects also write the instance map (``OUT_instances.tif`` unless
    ``options.instances`` names it), one id per object, for :func:`vectorize`.
    """
    net, meta = model if isinstance(model, tuple) else load_bundle(model)
    options = options or PredictOptions()
    if meta.objects is not None and options.instances is None:
        options = dataclasses.replace(options, instances=instances_path(out))
    check_outputs(
        [out, *_extra_outputs(options)],
        [scene] if isinstance(model, tuple) else [model, scene],
    )
    if meta.source == "geotiff":
        from geounet.infer.scene import predict_scene

        if isinstance(scene, str | os.PathLike) and "," in str(scene):
            scene = str(scene).split(",")
        if not isinstance(scene, str | os.PathLike) and meta.timesteps > 1:
            import tempfile

            from geounet.io.xbd import png_pair_scene

            with tempfile.TemporaryDirectory() as tmp:  # xBD PNGs: georeferenced first
                pair = png_pair_scene([Path(p) for p in scene], Path(tmp))
                if pair is not None:
                    return predict_scene(net, meta, pair, out, options, progress)
        return predict_scene(net, meta, scene, out, options, progress)
    from geounet.infer.cases import predict_input

    result = predict_input(net, meta, scene, out, options, progress)
    return PredictResult(result.path, result.class_pixels, 1.0, result.seconds)


def predict_many(
    model: PathLike,
    inputs: Sequence[PathLike],
    output: PathLike,
    options: PredictOptions | None = None,
    *,
    probabilities: bool = False,
    progress: Callable[[str], Progress | None] | None = None,
    client: Any = None,
    band_rows: int | None = None,
) -> list[PredictResult]:
    """Predict several inputs (or a folder of them): ``output`` is a file for one input
    and a directory otherwise (created when missing).

    Args:
        model: A bundle path.
        inputs: Scenes, chips, cases or folders of them.
        output: Output file or directory.
        options: Prediction options.
        probabilities: GeoTIFF models: also write ``OUT_proba.tif`` beside each class map.
        progress: Called with each input's name; returns that input's progress callback
            (with ``client``: called once, with the job's name, for pixels over the job).
        client: A ``dask.distributed.Client`` (see :func:`cluster`): one task per scene,
            large scenes in row bands, outputs identical to one process's; outputs this
            job already finished are skipped.
        band_rows: With ``client``: rows per band of a large scene (default: about
            2^28 pixels per band).

    Models of separate objects (``objects.enabled``) also write ``OUT_instances.tif``, the
    instance map (one id per object) that :func:`vectorize` turns into one polygon each.
    """
    net, meta = load_bundle(model)
    options = options or PredictOptions()
    output = Path(output)
    items, expanded = _expand_inputs(
        meta, [Path(str(i)) if "," not in str(i) else i for i in inputs]
    )
    if probabilities and meta.source != "geotiff":
        from geounet.errors import UnsupportedFormatError

        raise UnsupportedFormatError("--probabilities is available for GeoTIFF models only")
    if len(items) == 1 and not output.is_dir() and not expanded:
        outs = [output]
    else:
        if not output.is_dir() and (output.suffix or output.name.lower().endswith(".nii.gz")):
            from geounet.errors import ConfigError

            raise ConfigError(
                f"{output}: {len(items)} inputs write one result each; give an output folder "
                "(-o DIR), not a file name"
            )
        outs = [_output_in(meta, item, output) for item in items]
        seen: dict[Path, Any] = {}
        for item, out in zip(items, outs, strict=True):
            if out in seen:
                from geounet.errors import ConfigError

                raise ConfigError(
                    f"{item} and {seen[out]} would both write {out}; predict them into "
                    "different output folders"
                )
            seen[out] = item
        output.mkdir(parents=True, exist_ok=True)
    per_item = []
    for out in outs:
        scene_options = options
        if probabilities:
            scene_options = dataclasses.replace(options, probabilities=probabilities_path(out))
        if meta.objects is not None and scene_options.instances is None:
            scene_options = dataclasses.replace(scene_options, instances=instances_path(out))
        per_item.append(scene_options)
    check_outputs(
        [p for out, o in zip(outs, per_item, strict=True) for p in (out, *_extra_outputs(o))],
        [model, *items],
    )
    if client is not None:
        from geounet.cluster import predict_on_cluster

        callback = progress(f"{len(items)} input(s)") if progress else None
        return predict_on_cluster(
            client, model, items, outs, per_item, band_rows=band_rows, progress=callback
        )
    results = []
    for item, out, scene_options in zip(items, outs, per_item, strict=True):
        name = Path(str(item).split(",")[0]).name
        callback = progress(name) if progress else None
        results.append(predict((net, meta), item, out, scene_options, callback))
    return results


@contextlib.contextmanager
def cluster(
    local: str | None = None, scheduler: str | None = None, *, threads: int | None = None
) -> Iterator[Any]:
    """A Dask client for :func:`predict_many`: ``local="local:N"`` starts N worker
    processes here; ``scheduler`` joins a running cluster (address or scheduler file).
    ``threads``: torch threads per worker (default: local workers share the cores).

    Example:
        >>> with gu.cluster("local:4") as client:
        ...     gu.predict_many("model.safetensors", scenes, "masks/", client=client)
    """
    from geounet.cluster import connect

    with connect(local, scheduler, threads) as client:
        yield client


def check_outputs(outputs: Sequence[PathLike], inputs: Sequence[Any]) -> None:
    """Refuse, before any work, outputs that would overwrite an input (or each other)
    or that cannot be written.

    Args:
        outputs: Output files.
        inputs: Input files: paths, comma-joined paths or lists of paths.

    Raises:
        OutputError: Naming the output and what to change.
    """
    from geounet.errors import OutputError
    from geounet.io.atomic import check_output

    files: list[str] = []
    for item in inputs:
        if item is None:
            continue
        parts = [item] if isinstance(item, str | os.PathLike) else list(item)
        files += [q for part in parts for q in str(part).split(",") if q]
    seen: set[Path] = set()
    for out in outputs:
        resolved = Path(out).resolve()
        if resolved in seen:
            raise OutputError(f"{out}: written twice by this run; give the outputs distinct names")
        seen.add(resolved)
        check_output(out, files)


def _extra_outputs(options: PredictOptions) -> list[Path]:
    return [Path(p) for p in (options.probabilities, options.instances) if p]


def probabilities_path(mask: PathLike) -> Path:
    """Where ``predict_many(probabilities=True)`` writes the probabilities of ``mask``."""
    mask = Path(mask)
    return mask.with_name(f"{mask.stem}_proba{mask.suffix}")


def instances_path(mask: PathLike) -> Path:
    """Where ``predict_many`` writes the instance map of an object model's ``mask``."""
    mask = Path(mask)
    return mask.with_name(f"{mask.stem}_instances{mask.suffix}")


def _expand_inputs(meta: ModelMeta, inputs: list) -> tuple[list, bool]:
    """The single inputs (a folder of chips, slices or cases gives each of them), and
    whether a folder was expanded (its results then go to a folder)."""
    if meta.source == "geotiff":
        return inputs, False
    from geounet.infer.cases import folder_items

    items: list = []
    expanded = False
    for item in inputs:
        p = Path(str(item))
        found = folder_items(meta, p) if p.is_dir() else [item]
        expanded |= found != [item]  # a NIfTI case folder is one input, not a folder of them
        items.extend(found)
    return items, expanded


def _output_in(meta: ModelMeta, item: Any, folder: Path) -> Path:
    first = Path(str(item).split(",")[0])
    if meta.source == "geotiff":
        return folder / f"{first.stem}_mask.tif"
    from geounet.infer.cases import default_output

    return default_output(meta, first, folder)


def vectorize(
    mask: PathLike,
    out: PathLike | None = None,
    options: VectorizeOptions | None = None,
    *,
    probabilities: PathLike | None = None,
    crs: Any = None,
    progress: Progress | None = None,
    **settings: Any,
) -> gpd.GeoDataFrame:
    """Polygons of a class-map raster, cleaned and measured, optionally written to ``out``.

    Example:
        >>> gu.vectorize("mask.tif", "buildings.gpkg", regularize=True, min_area_m2=10)

    Args:
        mask: Single-band class-map GeoTIFF (as ``predict`` writes).
        out: Optional output file; its extension picks the format: GeoJSON (RFC 7946,
            EPSG:4326), GeoPackage, FlatGeobuf, GeoParquet or shapefile (native CRS).
        options: A :class:`VectorizeOptions`; or give its fields as keyword ``settings``
            (``classes``, ``min_area_m2``, ``fill_holes_m2``, ``simplify_m``,
            ``regularize``, ``smooth``, ``connectivity``, ``window``).
        probabilities: Probability raster from ``predict`` for a ``confidence`` column.
        crs: CRS to write non-GeoJSON formats in (default: the raster's).
        progress: Called with (windows done, windows in all).

    Returns:
        GeoDataFrame in the raster's CRS: ``class_id``, ``class_name``, ``area_m2``,
        ``perimeter_m`` (and ``confidence``), one valid polygon per region.
    """
    from geounet.vectorize.pipeline import vectorize_to_file

    if settings:
        options = (options or VectorizeOptions()).replace(**settings)
    return vectorize_to_file(
        mask, out, options, probabilities=probabilities, crs=crs, progress=progress
    )


def check_vector_output(path: PathLike, crs: Any = None, inputs: Sequence[Any] = ()) -> None:
    """Fail fast on a vector output path or CRS that cannot be written, or that would
    overwrite one of ``inputs``."""
    from geounet.vectorize.export import check_vector_path

    check_vector_path(path, crs=crs)
    check_outputs([path], inputs)


def evaluate(
    model: PathLike,
    out_dir: PathLike | None = None,
    *,
    image: PathLike | None = None,
    labels: PathLike | None = None,
    config: PathLike | Config | None = None,
    label_attribute: str | None = None,
    options: PredictOptions | None = None,
    min_object_m2: float | None = None,
) -> Any:
    """Score ``model`` and write ``metrics.json``, ``report.md`` and figures to ``out_dir``.

    Give ``image`` and ``labels`` (a scene and its labels), or a training ``config``,
    whose test cases or strips (validation ones when it has none) are rebuilt as in
    training. Scenes get pixel scores and polygon object scores (SpaceNet rule: one-to-one
    matches at IoU > 0.5, polygons under 20 px or ``min_object_m2`` dropped, merges and
    splits). Chips, volumes and slices get per-case Dice, IoU and HD95 (mm).
    """
    if config is not None and not isinstance(config, Config):
        config = load_config(config)
    if config is not None:
        config = _xbd_as_geotiff(config)
    out = Path(out_dir) if out_dir else Path(model).with_name("evaluation")
    check_outputs([out / "metrics.json"], [model, image, labels])
    source = config.data.source if config is not None else read_meta(model).source
    if source != "geotiff":
        from geounet.evaluate_cases import evaluate_cases

        return evaluate_cases(model, out, config, image=image, labels=labels, options=options)
    from geounet.evaluate import evaluate as evaluate_scene

    return evaluate_scene(
        model,
        out,
        image=image,
        labels=labels,
        config=config,
        label_attribute=label_attribute,
        options=options,
        min_object_m2=min_object_m2,
    )


def demo(out_dir: PathLike = "demo_output", **kwargs: Any) -> Any:
    """Run the end-to-end demo (``make demo``): generate, train, predict, vectorize, score."""
    from geounet.demo import run_demo

    return run_demo(out_dir, **kwargs)


__all__ = [
    "PredictOptions",
    "VectorizeOptions",
    "cluster",
    "demo",
    "evaluate",
    "list_models",
    "load_model",
    "model_info",
    "predict",
    "predict_many",
    "resume",
    "train",
    "vectorize",
]


def save_traceback(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected error (a bug) to
    ``~/.cache/geounet/crashes/`` (or the temporary folder) for a bug report.

    Returns:
        The file written, or None if no folder was writable.
    """
    import sys
    import tempfile
    import time
    import traceback

    from geounet import __version__
    from geounet.runtime import cache_root

    text = "".join(traceback.format_exception(exc))
    name = f"geounet-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (cache_root() / "crashes", Path(tempfile.gettempdir())):
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"geounet {__version__}\n{' '.join(sys.argv)}\n\n{text}")
            return path
    return None
