"""Self-describing model files: one ``.safetensors`` holding weights and JSON metadata.

Nothing is pickled: loading a bundle reads tensors and JSON only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geounet import __version__
from geounet.errors import InputFileNotFoundError, ModelError, first_line
from geounet.io.atomic import atomic_output, finite
from geounet.models.registry import build_model
from geounet.models.segmenter import Segmenter

METADATA_KEY = "geounet"
FORMAT_VERSION = 1


@dataclass
class ModelMeta:
    """Everything needed to rebuild and correctly apply a trained model.

    ``bands`` names the input channels in order; stacked temporal inputs (``timesteps``
    > 1) name them ``t0:red, t0:green, ..., t1:red, ...``. ``band_indexes`` are the
    1-based bands of the source rasters used when training picked a subset.
    """

    architecture: str
    arguments: dict[str, Any]
    in_channels: int
    out_channels: int
    classes: list[str]
    colors: list[list[int]]
    bands: list[str]
    mean: list[float]
    std: list[float]
    tile_size: int
    resolution: list[float] | None = None
    crs: str | None = None
    ground_resolution_m: float | None = None
    timesteps: int = 1
    clip_low: list[float] | None = None
    clip_high: list[float] | None = None
    band_indexes: list[int] | None = None
    # inputs other than GeoTIFF scenes: the source kind, how its files are read and
    # prepared (normalization, spacing, slices, label mapping) and the 3D patch size
    source: str = "geotiff"
    preprocess: dict[str, Any] = field(default_factory=dict)
    patch: list[int] | None = None
    # separate objects: widths of the training target and the instance-step settings
    # (see geounet.infer.instances); the outputs are footprint, border and contact logits
    objects: dict[str, Any] | None = None
    # stacked inputs: "bands" (band files of one date) or "dates"; acquisition dates of
    # each training scene's stacked files (None where unknown), checked at prediction
    stack: str | None = None
    dates: list[list[str | None]] | None = None
    # how labels became classes: attribute, value -> class map (rare values grouped into
    # "other"), sparse, ignored values, the vector column of class names (crop_type)
    labels: dict[str, Any] = field(default_factory=dict)
    display_bands: list[int] | None = None  # 0-based channels shown as RGB in figures
    # line networks (roads): the label width and the settings of the network vectorizer
    # (spur_m, gap_m, min_length_m, simplify_m) and of evaluation (tolerance_m)
    lines: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    geounet_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def binary(self) -> bool:
        """True for one-logit foreground/background models."""
        return self.out_channels == 1

    @property
    def boundary(self) -> bool:
        """True for object models with a boundary class (one past the last class)."""
        return (self.objects or {}).get("target") == "boundary"

    @property
    def object_name(self) -> str:
        """What an object model's objects are: ``objects.name`` when set, else the object
        class of a two-class model (``building``), ``field`` for the boundary target."""
        name = (self.objects or {}).get("name")
        return name or ("field" if self.boundary else self.classes[1])

    @property
    def sigmoid(self) -> bool:
        """True when every output channel is an independent sigmoid (binary, objects)."""
        return self.out_channels == 1 or (self.objects is not None and not self.boundary)


def build_segmenter(meta: ModelMeta) -> Segmenter:
    """Construct the (untrained) model a metadata record describes."""
    net = build_model(meta.architecture, meta.in_channels, meta.out_channels, **meta.arguments)
    clip = (meta.clip_low, meta.clip_high) if meta.clip_low is not None else None
    return Segmenter(net, meta.mean, meta.std, clip)


def save_bundle(model: Segmenter, meta: ModelMeta, path: str | os.PathLike[str]) -> Path:
    """Save weights and metadata to one ``.safetensors`` file, atomically.

    Args:
        model: The trained model.
        meta: Its metadata.
        path: Output path.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    record = finite(dataclasses.asdict(meta))
    metadata = {"format": "pt", METADATA_KEY: json.dumps(record, allow_nan=False)}
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def read_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Read only the metadata of a bundle (fast: no weights are loaded)."""
    from safetensors import safe_open

    p = _existing(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{p}: not a safetensors model file ({exc})") from exc
    if METADATA_KEY not in header:
        raise ModelError(f"{p}: a safetensors file without geounet metadata; not a geounet model")
    try:
        raw = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{p}: corrupt geounet metadata ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"{p}: corrupt geounet metadata (not a JSON object)")
    version = raw.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelError(f"{p}: corrupt geounet metadata (format_version {version!r})")
    if version > FORMAT_VERSION:
        made_by = raw.get("geounet_version", "a newer geounet")
        raise ModelError(
            f"{p}: model format {version} (written by geounet {made_by}) is newer than this "
            f"geounet {__version__} reads (format {FORMAT_VERSION}); upgrade geounet "
            "(pip install -U geounet)"
        )
    known = {f.name for f in dataclasses.fields(ModelMeta)}
    try:
        return ModelMeta(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        raise ModelError(f"{p}: corrupt geounet metadata ({exc})") from exc


def load_bundle(path: str | os.PathLike[str]) -> tuple[Segmenter, ModelMeta]:
    """Rebuild a model from a bundle.

    Args:
        path: A ``.safetensors`` file written by :func:`save_bundle`.

    Returns:
        ``(model, meta)`` with the model in eval mode on the CPU.

    Raises:
        ModelError: Not a geounet bundle, or weights that do not fit the architecture.
    """
    from safetensors.torch import load_file

    meta = read_meta(path)
    try:
        model = build_segmenter(meta)
    except ModelError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(
            f"{path}: its metadata describe a model this geounet cannot build "
            f"({meta.architecture}, {first_line(exc)})"
        ) from exc
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(
            f"{path}: the weights cannot be read ({first_line(exc)}); the file is damaged "
            "or incomplete: copy or download it again"
        ) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise ModelError(
            f"{path}: weights do not fit the recorded architecture "
            f"{meta.architecture} (in_channels={meta.in_channels}): {first}"
        ) from exc
    return model.eval(), meta


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: model file not found")
    return p
