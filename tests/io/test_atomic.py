"""atomic_output: rename on success, leave nothing on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from geounet.io.atomic import atomic_output


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_success_renames(tmp_path):
    final = tmp_path / "out.tif"
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp != final
        assert tmp.suffix == ".tif"  # drivers chosen by extension still work
        assert not tmp.exists()  # the writer creates it
        assert not final.exists()
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert _entries(tmp_path) == ["out.tif"]


def test_success_removes_sidecars(tmp_path):
    final = tmp_path / "out.tif"
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"data")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<x/>")
    assert _entries(tmp_path) == ["out.tif"]


def test_exception_leaves_nothing(tmp_path):
    final = tmp_path / "out.gpkg"
    with pytest.raises(KeyError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<x/>")
        raise KeyError("interrupted")
    assert _entries(tmp_path) == []


def test_exception_keeps_existing_file(tmp_path):
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
        raise RuntimeError
    assert final.read_bytes() == b"old"
    assert _entries(tmp_path) == ["out.tif"]


def test_overwrites_existing_file(tmp_path):
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"
    assert _entries(tmp_path) == ["out.tif"]


def test_parent_directory_created(tmp_path):
    final = tmp_path / "a" / "b" / "out.tif"
    with atomic_output(final) as tmp:
        assert tmp.parent.is_dir()
        tmp.write_text("x")
    assert final.read_text() == "x"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_permissions_follow_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        final = tmp_path / "out.tif"
        with atomic_output(final) as tmp:
            tmp.write_text("x")
            os.chmod(tmp, 0o600)  # like mkstemp would leave it
    finally:
        os.umask(old)
    assert stat.S_IMODE(final.stat().st_mode) == mode


def test_staging_files_of_dead_processes_are_cleaned(tmp_path):
    import subprocess
    import sys

    from geounet.io.atomic import staging_path

    # a staging file left by a process that is gone (kill -9), one of a live process
    code = "from pathlib import Path; from geounet.io.atomic import staging_path; "
    code += f"p = staging_path(Path({str(tmp_path / 'out.tif')!r})); p.touch(); print(p)"
    dead = Path(subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, check=True).stdout.strip())  # fmt: skip
    alive = staging_path(tmp_path / "other.tif")
    alive.touch()
    assert dead.exists() and dead.name.startswith(".out.")
    with atomic_output(tmp_path / "new.tif") as tmp:
        tmp.write_text("x")
    assert not dead.exists()  # its process is gone
    assert alive.exists()  # a run in progress keeps its file
    assert (tmp_path / "new.tif").read_text() == "x"


def test_write_errors_name_the_final_path(tmp_path, monkeypatch):
    import errno

    from geounet.errors import OutputError

    out = tmp_path / "mask.tif"
    with pytest.raises(OutputError) as info, atomic_output(out) as tmp:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert str(info.value) == (
        f"{out}: could not write (the disk is full); nothing was left at this path"
    )
    assert list(tmp_path.iterdir()) == []
    # errors that are not I/O (bugs) pass through unchanged
    with pytest.raises(ZeroDivisionError), atomic_output(out):
        _ = 1 / 0


def test_check_output_refuses_inputs_and_files_as_folders(tmp_path):
    from geounet.errors import OutputError
    from geounet.io.atomic import check_output

    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"II*\x00")
    link = tmp_path / "link.tif"
    link.symlink_to(scene)
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_output(link, [scene])
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_output(tmp_path / "sub" / ".." / "scene.tif", [str(scene)])
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(scene / "out.tif", [])
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path, [])
    assert check_output(tmp_path / "new" / "out.tif", [scene]) == tmp_path / "new" / "out.tif"
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_work(tmp_path):
    from geounet.errors import OutputError
    from geounet.io.atomic import check_output

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_output(folder / "out.tif", [])
    finally:
        folder.chmod(0o755)


def test_json_is_strict(tmp_path):
    import json
    import math

    from geounet.io.atomic import write_json

    path = write_json({"iou": math.nan, "hd95": [math.inf, 1.5], "n": 3}, tmp_path / "m.json")

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "iou": None,
        "hd95": [None, 1.5],
        "n": 3,
    }


def test_unwritable_folder_is_refused_before_work(tmp_path, monkeypatch):
    import errno

    from geounet.errors import OutputError
    from geounet.io.atomic import check_output

    def refuse(self, *args, **kwargs):  # as a read-only folder does for non-root users
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(OutputError) as info:
        check_output(tmp_path / "out.tif", [])
    assert str(info.value) == (
        f"{tmp_path / 'out.tif'}: could not write (permission denied); nothing was left at "
        "this path"
    )
