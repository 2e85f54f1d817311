"""Device and precision selection shared by training and prediction."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from geounet.errors import GeounetError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def select_device(name: str = "auto") -> torch.device:
    """Pick the device: ``auto`` prefers CUDA, then Apple MPS, then the CPU.

    Args:
        name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns:
        The torch device.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise GeounetError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GeounetError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None means plain fp32).

    ``auto`` uses bf16 on CUDA GPUs that support it (fp16 otherwise) and on CPUs
    with native bf16 instructions; fp32 elsewhere.
    """
    if precision not in PRECISIONS:
        raise GeounetError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def is_rank_zero() -> bool:
    """Whether this process is rank 0 of a data-parallel job (or runs alone).

    Read from the launcher's environment (torchrun's ``RANK``, SLURM's ``SLURM_PROCID``,
    Lightning's ``NODE_RANK`` and ``LOCAL_RANK``), so that it is known before the
    process group exists.
    """
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", "0")) == 0 and int(env.get("LOCAL_RANK", "0")) == 0


def launcher_layout() -> tuple[int, int] | None:
    """(processes per node, nodes) when launched by torchrun or SLURM ``srun`` with
    several processes; None otherwise."""
    env = os.environ
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env and "GROUP_RANK" in env:  # torchrun
        per_node, world = int(env["LOCAL_WORLD_SIZE"]), int(env["WORLD_SIZE"])
        return per_node, max(1, world // per_node)
    tasks = int(env.get("SLURM_NTASKS", "1"))
    if tasks > 1 and "SLURM_PROCID" in env:
        nodes = int(env.get("SLURM_NNODES", env.get("SLURM_JOB_NUM_NODES", "1")))
        return max(1, tasks // nodes), nodes
    return None


def cache_root() -> Path:
    """Where geounet caches compiled code: ``$GEOUNET_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/geounet``, else ``~/.cache/geounet``."""
    if os.environ.get("GEOUNET_CACHE_DIR"):
        return Path(os.environ["GEOUNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "geounet"


def use_compile_cache() -> None:
    """Keep torch.compile's code cache under :func:`cache_root` (unless the user set
    ``TORCHINDUCTOR_CACHE_DIR``): it survives reboots, unlike the default in /tmp."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        # unset, or set to the default by an import (lightning sets it)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root() / "inductor")
