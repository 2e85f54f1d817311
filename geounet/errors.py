"""One error hierarchy for geounet.

Every error a user can cause derives from :class:`GeounetError` and, where a caller
would expect one, from the matching builtin (``FileNotFoundError``, ``ValueError``,
...), so ``except ValueError`` keeps working for library users while the CLI prints
any ``GeounetError`` as one clear line.
"""

import contextlib
from collections.abc import Callable, Iterator


class GeounetError(Exception):
    """Base class of all errors geounet raises on bad input or configuration."""


class InputFileNotFoundError(GeounetError, FileNotFoundError):
    """A file the user named does not exist."""


class InvalidRasterError(GeounetError, ValueError):
    """A raster cannot be read or lacks what geounet needs (CRS, data, bands)."""


class InvalidVectorError(GeounetError, ValueError):
    """A vector file cannot be read or lacks what geounet needs."""


class ConfigError(GeounetError, ValueError):
    """A configuration key is unknown, missing or of the wrong type."""


class ModelError(GeounetError, ValueError):
    """A model name, its arguments or a model bundle is invalid."""


class DataError(GeounetError, ValueError):
    """Training or prediction data are inconsistent (too small, no overlap, ...)."""


class UnsupportedFormatError(GeounetError, ValueError):
    """An output file extension names a format geounet cannot write."""


class OutputError(GeounetError, OSError):
    """An output cannot be written (full disk, file-size limit, permissions) or would
    overwrite an input."""


class TrainingError(GeounetError, RuntimeError):
    """Training cannot go on (the loss became NaN or infinite)."""


def is_io_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a file-system, GDAL or OGR error (not a programming error)."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("rasterio", "pyogrio", "fiona", "safetensors"))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none); GDAL's
    "See previous exception" wrappers give their cause's message."""
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if "previous exception" in text and cause is not None:
        return first_line(cause)
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def io_errors_as(make: Callable[[BaseException], GeounetError]) -> Iterator[None]:
    """Re-raise file-system, GDAL and OGR errors of the block as ``make(exc)``: one
    GeounetError naming the file. GeounetErrors and programming errors pass unchanged."""
    try:
        yield
    except GeounetError:
        raise
    except Exception as exc:
        if not is_io_error(exc):
            raise
        raise make(exc) from exc
