"""Tests for device and precision selection."""

import pytest
import torch

from geounet.errors import GeounetError
from geounet.runtime import autocast_dtype, select_device


def test_select_cpu() -> None:
    assert select_device("cpu") == torch.device("cpu")


def test_auto_is_cpu_without_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device() == torch.device("cpu")


def test_auto_prefers_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_unavailable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GeounetError, match="CUDA is not available"):
        select_device(name)


def test_unknown_device_name() -> None:
    with pytest.raises(GeounetError, match="unknown device"):
        select_device("tpu-please")


@pytest.mark.parametrize(
    ("precision", "expected"),
    [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)],
)
def test_explicit_precisions(precision: str, expected: torch.dtype | None) -> None:
    for device in (torch.device("cpu"), torch.device("cuda")):
        assert autocast_dtype(device, precision) is expected


def test_auto_precision_on_cpu_follows_bf16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    import geounet.runtime as runtime

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    assert autocast_dtype(cpu, "auto") is None
    assert autocast_dtype(cpu) is None
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    assert autocast_dtype(cpu, "auto") is torch.bfloat16


def test_auto_precision_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(cuda, "auto") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype(cuda, "auto") is torch.float16


def test_auto_precision_elsewhere_is_fp32() -> None:
    assert autocast_dtype(torch.device("mps"), "auto") is None


def test_unknown_precision() -> None:
    with pytest.raises(GeounetError, match="unknown precision"):
        autocast_dtype(torch.device("cpu"), "fp8")
