"""Write outputs atomically: never leave a half-written file at the user's path.

Every output is written to a staging file beside it (``.NAME.HOST-PID-XXXX.partial.EXT``)
and renamed into place when complete. A process killed on the way (``kill -9``, power
loss) leaves only its staging files, which the next write to the same folder removes
once their process is gone. Write failures (full disk, file-size limit, permissions)
become one :class:`~geounet.errors.OutputError` naming the user's path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from geounet.errors import InputFileNotFoundError, OutputError, first_line, io_errors_as

_HOST = re.sub(r"\W", "_", socket.gethostname(), flags=re.ASCII)[:32] or "host"
_STAGING = re.compile(r"^\.(?P<stem>.*)\.(?P<host>\w+)-(?P<pid>\d+)-[0-9a-f]{8}\.partial", re.ASCII)
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file-size limit was reached (ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def staging_path(final: Path) -> Path:
    """A fresh staging path beside ``final``; it keeps the final suffix so that drivers
    chosen by extension (GDAL, OGR) behave the same."""
    tag = f"{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    return final.with_name(f".{final.stem}.{tag}.partial{final.suffix}")


def clean_stale(folder: Path) -> list[Path]:
    """Remove staging files in ``folder`` left by processes of this host that are gone.

    Returns:
        The paths removed.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _STAGING.match(entry.name)
            if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
                continue
            with contextlib.suppress(OSError):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, translate: bool = True) -> Iterator[Path]:
    """Yield a staging path beside ``path``; rename it onto ``path`` on success.

    On any exception the staging file (and files named after it) is removed and
    ``path`` is left untouched.

    Args:
        path: The final output path. Its parent directory is created if missing.
        translate: Report I/O errors raised inside the block as failures to write
            ``path`` (:func:`output_errors`); False where the block also reads inputs.

    Yields:
        A staging path in the same directory to write to (not yet created).

    Raises:
        OutputError: If the folder cannot be created or the rename fails.
    """
    final = Path(path)
    with output_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final.parent)
    tmp = staging_path(final)
    try:
        with output_errors(final) if translate else contextlib.nullcontext():
            yield tmp
        with output_errors(final):
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, final)
    finally:
        for leftover in (tmp, *tmp.parent.glob(glob_escape(tmp.name) + ".*")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def output_errors(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[None]:
    """Turn any failure to write ``path`` into one :class:`OutputError` naming it.

    GeounetErrors pass through unchanged; OS, GDAL and OGR errors become "PATH: could
    not write (the disk is full); ..." with the most likely reason.
    """
    final = Path(path)
    return io_errors_as(
        lambda exc: OutputError(
            f"{final}: could not write ({write_failure_reason(exc, final.parent)}); nothing "
            "was left at this path"
        )
    )


def write_failure_reason(exc: BaseException, folder: Path) -> str:
    """The most likely reason a write into ``folder`` failed, in a few words."""
    for seen in _chain(exc):
        # only OSErrors: rasterio's GDAL errors carry GDAL's error class as ``errno``
        if isinstance(seen, OSError) and seen.errno in _REASONS:
            return _REASONS[seen.errno]
    text = " ".join(str(e) for e in _chain(exc))
    for code, words in ((errno.ENOSPC, "No space left"), (errno.EFBIG, "File too large")):
        if words in text:
            return _REASONS[code]
    with contextlib.suppress(OSError):
        if shutil.disk_usage(_existing_parent(folder)).free < 16 * 2**20:
            return _REASONS[errno.ENOSPC]
    limit = _file_size_limit()
    if limit is not None:
        return f"{_REASONS[errno.EFBIG]}: {limit // 1024} KiB"
    if not os.access(_existing_parent(folder), os.W_OK):
        return _REASONS[errno.EACCES]
    return first_line(exc)


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _existing_parent(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output(
    path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Refuse, before any work, an output path that is one of the inputs or cannot be
    written (its folder is created if missing).

    Raises:
        OutputError: The output would overwrite an input, or its folder is not writable.
    """
    final = Path(path)
    for source in inputs:
        if same_file(final, Path(source)):
            raise OutputError(
                f"{final}: the output would overwrite the input {source}; choose another "
                "output path"
            )
    if final.is_dir():
        raise OutputError(f"{final}: is a folder; give an output file name inside it")
    parent = _existing_parent(final.parent)
    if not parent.is_dir():
        raise OutputError(f"{final}: {parent} is a file, not a folder; choose another output path")
    with output_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        probe = staging_path(final)
        probe.touch()
        probe.unlink()
    return final


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (through links and relative paths)."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None, recursively (strict JSON
    has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_json(data: object, path: str | os.PathLike[str]) -> Path:
    """Write plain data as strict JSON (NaN and infinities as null), atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n")
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_yaml(data: object, path: str | os.PathLike[str]) -> Path:
    """Write plain data as YAML (keys in their order), atomically."""
    import yaml

    return write_text(yaml.safe_dump(data, sort_keys=False), path)


def require_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; one clear error when nothing is there.

    Raises:
        InputFileNotFoundError: If the path does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: file not found; check the path")
    return p
