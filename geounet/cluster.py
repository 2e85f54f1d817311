"""Prediction over a Dask cluster: many scenes, or one huge scene in row bands.

The cluster is Dask's (``dask.distributed``): a ``LocalCluster`` on this machine, or any
scheduler (SLURM or PBS through dask-jobqueue, Kubernetes, cloud). Each scene is one
task; a scene larger than a band is split into row bands (:mod:`geounet.infer.bands`)
whose parts are assembled into the same COG one process writes. Each worker loads the
model once and keeps it. Finished outputs and finished bands carry the job's signature
and are skipped when the job runs again; a task whose worker dies is run again elsewhere
(Dask's retries and ``allowed-failures``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from geounet.errors import ConfigError, DataError, GeounetError
from geounet.infer.scene import PredictOptions, PredictResult
from geounet.io.atomic import require_file

log = logging.getLogger(__name__)

BAND_PIXELS = 2**28  # a scene above this many pixels is predicted in bands of about this
RETRIES = 1  # runs of a task that raised, beyond the first (worker deaths: Dask's own)
_MODELS: dict[tuple, Any] = {}  # per worker process: model bundles loaded once
_LOCK = threading.Lock()  # one task at a time per worker process, whatever its threads


@contextlib.contextmanager
def connect(
    cluster: str | None = None, scheduler: str | None = None, threads: int | None = None
) -> Iterator[Any]:
    """A ``dask.distributed.Client``: ``cluster="local:N"`` starts N worker processes on
    this machine (one task at a time each; torch uses ``threads`` threads in each, by
    default the cores divided by N), ``scheduler`` joins a running cluster at that
    address (``tcp://host:8786`` or a scheduler file ``*.json``).

    Raises:
        ConfigError: A malformed ``cluster`` or an unreachable scheduler.
    """
    # Dask logs every worker start and stop at INFO; geounet reports the job itself
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import dask
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.WARNING)
        logging.getLogger("distributed.nanny").addFilter(_quiet_shutdown)
    if (cluster is None) == (scheduler is None):
        raise ConfigError("give one of --cluster local:N or --scheduler ADDRESS")
    if cluster is not None:
        kind, _, count = cluster.partition(":")
        if kind != "local" or not count.isdigit() or int(count) < 1:
            raise ConfigError(
                f"--cluster {cluster!r}: use local:N (N worker processes on this machine); "
                "for other clusters start a scheduler and give --scheduler ADDRESS"
            )
        n = int(count)
        # Dask's workers set MALLOC_TRIM_THRESHOLD_=65536, which makes glibc map every
        # large array afresh: prediction ran 1.2x slower (85 vs 70 s for 16.8 MPix)
        environ = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
        with (
            dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            ) as local,
            Client(local) as client,
        ):
            client.geounet_threads = threads or max(1, (os.cpu_count() or 1) // n)
            yield client
        return
    try:
        if scheduler.endswith(".json"):
            client = Client(scheduler_file=scheduler, timeout="30s")
        else:
            client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"--scheduler {scheduler}: cannot reach a Dask scheduler ({exc})"
        ) from exc
    with client:
        if threads:
            client.geounet_threads = threads
        yield client


def _quiet_shutdown(record: logging.LogRecord) -> bool:
    """Drop the nanny's notice that a worker took over 4 s to exit when the cluster
    closes (torch tears down slowly; every output is written by then)."""
    return "still alive after" not in record.getMessage()


def job_signature(model: str | os.PathLike[str], item: Any, options: PredictOptions) -> str:
    """What an output depends on: the model file, the input files and the options."""

    def stat(path: str | os.PathLike[str]) -> list:
        p = require_file(path)
        s = p.stat()
        return [str(p.resolve()), s.st_size, s.st_mtime_ns]

    files = str(item).split(",") if isinstance(item, str | os.PathLike) else list(item)
    settings = dataclasses.asdict(options)
    for key in ("probabilities", "instances", "job"):
        settings[key] = settings[key] is not None if key != "job" else None
    record = {"model": stat(model), "inputs": [stat(f) for f in files], "options": settings}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def finished(out: Path, options: PredictOptions) -> dict | None:
    """The record of an output this job already wrote (with its companions), or None."""
    import rasterio

    from geounet.io.write import JOB_TAG

    companions = [p for p in (options.probabilities, options.instances) if p is not None]
    if not out.exists() or not all(Path(p).exists() for p in companions):
        return None
    try:
        with rasterio.open(out) as src:
            record = json.loads(src.tags().get(JOB_TAG, "null"))
    except (rasterio.errors.RasterioIOError, json.JSONDecodeError):
        return None
    return record if record and record.get("job") == options.job else None


def predict_on_cluster(
    client: Any,
    model: str | os.PathLike[str],
    items: Sequence[Any],
    outs: Sequence[Path],
    options: Sequence[PredictOptions],
    *,
    band_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[PredictResult]:
    """Predict ``items`` into ``outs`` on the cluster behind ``client``.

    Args:
        client: A ``dask.distributed.Client``.
        model: The model bundle (a path every worker can read).
        items: Scenes (paths, or lists of co-registered rasters).
        outs: Class-map paths, one per item (a filesystem the workers share).
        options: Prediction options per item (probability / instance paths set).
        band_rows: Rows per band for large scenes (default: about 2^28 pixels a band,
            and at least 8 window rows).
        progress: Called with (pixels done, pixels in all) as tasks finish.

    Returns:
        One :class:`PredictResult` per item (``reused`` for outputs found finished).
    """
    from distributed import as_completed

    from geounet.infer.bands import part_record, scene_bands
    from geounet.infer.scene import plan_scene, single_file
    from geounet.io.raster import raster_info
    from geounet.models.bundle import read_meta

    meta = read_meta(model)
    if meta.source != "geotiff":
        raise ConfigError(
            "--cluster and --scheduler distribute GeoTIFF scenes; this model predicts chips, "
            "volumes or slices: run it without them"
        )
    # workers may run elsewhere, in other working directories: absolute paths only
    model = str(Path(model).resolve())
    items = [_absolute(item) for item in items]
    outs = [Path(out).resolve() for out in outs]
    options = [
        dataclasses.replace(
            o,
            probabilities=Path(o.probabilities).resolve() if o.probabilities else None,
            instances=Path(o.instances).resolve() if o.instances else None,
        )
        for o in options
    ]
    threads = getattr(client, "geounet_threads", None)
    submit = _submitter(client)
    results: list[PredictResult | None] = [None] * len(items)
    futures, sizes = {}, {}
    total = done = 0
    reused_scenes = reused_bands = bands_in_all = 0
    for i, (item, out, opts) in enumerate(zip(items, outs, options, strict=True)):
        opts = dataclasses.replace(opts, job=job_signature(model, item, opts))
        record = finished(out, opts)
        if record is not None:  # on the scene's grid: its size without opening the scene
            grid = raster_info(out)
            pixels = grid.width * grid.height
            results[i] = _reused(meta, out, opts, record)
            reused_scenes += 1
            total += pixels
            done += pixels
            continue
        scene = single_file(meta, item, _parts_folder(out))
        plan = plan_scene(meta, scene, opts)
        pixels = plan.info.width * plan.info.height
        total += pixels
        # bands of at least 8 window rows, so that the halo above and below costs little
        tile_rows = round(plan.tile * plan.scale)
        rows = band_rows or max(8 * tile_rows, -(-BAND_PIXELS // plan.info.width))
        if plan.info.height < 2 * rows:  # one task for the whole scene
            future = submit(_scene_task, model, item, str(out), opts, threads, key=f"scene-{i}")
            futures[future], sizes[future] = i, pixels
            continue
        bands = scene_bands(plan, rows, _parts_folder(out))
        bands_in_all += len(bands)
        pending = []
        for b, band in enumerate(bands):
            band_pixels = (band.stop - band.start) * plan.info.width
            if (part_record(band) or {}).get("job") == opts.job:
                reused_bands += 1
                done += band_pixels
                continue
            future = submit(_band_task, model, scene, band, opts, threads, key=f"band-{i}-{b}")
            pending.append(future)
            futures[future], sizes[future] = None, band_pixels
        future = submit(
            _assemble_task, model, scene, bands, str(out), opts, pending, key=f"join-{i}"
        )
        futures[future], sizes[future] = i, 0
    if reused_scenes or reused_bands:
        log.info(
            "%d of %d outputs and %d of %d bands already finished by this job: skipped",
            reused_scenes,
            len(items),
            reused_bands,
            bands_in_all,
        )
    if progress is not None:
        progress(done, total)
    try:
        for future in as_completed(list(futures)):
            result = future.result()
            done += sizes[future]
            if futures[future] is not None:
                results[futures[future]] = result
            if progress is not None:
                progress(done, total)
    except GeounetError:
        raise
    except (Exception, asyncio.CancelledError) as exc:  # Dask's cancellations included
        what = (
            "a task failed on every worker that ran it"
            if type(exc).__name__ == "KilledWorker"
            else f"the cluster stopped the job ({type(exc).__name__}: {exc})"
        )
        raise DataError(
            f"{what}; rerun the same command to continue from the finished outputs"
        ) from exc
    for out in outs:  # stacked-scene VRTs of scenes predicted whole
        shutil.rmtree(_parts_folder(out), ignore_errors=True)
    return [r for r in results if r is not None]


def _absolute(item: Any) -> Any:
    """A scene (a path, comma-joined paths or a list of them) with absolute paths."""
    if isinstance(item, str | os.PathLike) and "," not in str(item):
        return str(Path(item).resolve())
    files = str(item).split(",") if isinstance(item, str | os.PathLike) else list(item)
    return [str(Path(f).resolve()) for f in files]


def _submitter(client: Any) -> Callable[..., Any]:
    """``client.submit`` with retries, unique keys and one GPU per task where workers
    declare GPU resources (``dask worker --resources GPU=1``)."""
    import uuid

    run = uuid.uuid4().hex[:8]
    workers = client.scheduler_info().get("workers", {}).values()
    gpus = any("GPU" in (w.get("resources") or {}) for w in workers)

    def submit(fn: Callable[..., Any], *args: Any, key: str) -> Any:
        extra = {"resources": {"GPU": 1}} if gpus and fn is not _assemble_task else {}
        return client.submit(
            fn, *args, key=f"geounet-{key}-{run}", retries=RETRIES, pure=False, **extra
        )

    return submit


def _parts_folder(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.parts"


def _reused(meta: Any, out: Path, options: PredictOptions, record: dict) -> PredictResult:
    pixels = dict(zip(meta.classes, record["class_pixels"], strict=True))
    instances = Path(options.instances) if options.instances is not None else None
    return PredictResult(Path(out), pixels, 1.0, 0.0, instances, record.get("objects"), reused=True)


# -- on the workers ----------------------------------------------------------------------


def _worker_model(path: str, options: PredictOptions, threads: int | None) -> tuple:
    """The worker's copy of the model (loaded once per process) and its options, with
    the worker's own GPU when it has several (worker ``i`` takes GPU ``i % count``)."""
    import torch

    from geounet.models.bundle import load_bundle

    # a worker runs one task at a time: torch takes the cores it may use (Dask's
    # workers start with OMP_NUM_THREADS=1)
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    torch.set_num_threads(threads or (len(cores) if cores else os.cpu_count() or 1))
    if options.device == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        from distributed import get_worker

        # local workers are named 0..N-1; others (e.g. "SLURMCluster-3") end in a number
        digits = re.search(r"(\d+)$", str(get_worker().name))
        if digits:
            gpu = int(digits.group(1)) % torch.cuda.device_count()
            options = dataclasses.replace(options, device=f"cuda:{gpu}")
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_bundle(path)
    return _MODELS[key], options


def _scene_task(model: str, item: Any, out: str, options: PredictOptions, threads) -> PredictResult:
    from geounet.api import predict

    with _LOCK:
        bundle, options = _worker_model(model, options, threads)
        return predict(bundle, item, out, options)


def _band_task(model: str, scene: str, band: Any, options: PredictOptions, threads) -> dict:
    from geounet.infer.bands import predict_band

    with _LOCK:
        (net, meta), options = _worker_model(model, options, threads)
        return predict_band(net, meta, scene, band, options, job=options.job)


def _assemble_task(
    model: str, scene: str, bands: list, out: str, options: PredictOptions, _after: list
) -> PredictResult:
    from geounet.infer.bands import assemble_bands
    from geounet.models.bundle import read_meta

    result = assemble_bands(read_meta(model), scene, bands, out, options)
    shutil.rmtree(bands[0].folder, ignore_errors=True)
    return result
