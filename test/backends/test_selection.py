"""Backend selection: the tensorrt -> onnxruntime -> torch chain, its one warning, and what is not caught."""

import importlib.util
import warnings

import pytest

from ros2_tracker.backends.selection import (
    BackendChoice,
    BackendFallbackWarning,
    BackendUnavailable,
    create_with_fallback,
    fallback_chain,
    resolve_backend,
    unavailable_reason,
)
from ros2_tracker.core.config import ConfigError

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("requested,supported,chain", [
    ("tensorrt", ("torch", "onnxruntime", "tensorrt"), ("tensorrt", "onnxruntime", "torch")),
    ("onnxruntime", ("torch", "onnxruntime", "tensorrt"), ("onnxruntime", "torch")),
    ("torch", ("torch", "onnxruntime", "tensorrt"), ("torch",)),
    ("tensorrt", ("onnxruntime", "tensorrt"), ("tensorrt", "onnxruntime")),
])
def test_fallback_chain_follows_tensorrt_onnxruntime_torch(requested, supported, chain):
    assert fallback_chain(requested, supported) == chain


@pytest.mark.parametrize("requested,supported,message", [
    ("openvino", ("onnxruntime",), "not one of"),
    ("torch", ("onnxruntime", "tensorrt"), "not available for this model"),
])
def test_unknown_or_unsupported_backend_is_a_config_error(requested, supported, message):
    with pytest.raises(ConfigError, match=message):
        fallback_chain(requested, supported)


@pytest.mark.parametrize("device", ["gpu", "cuda:abc", "cuda:-1", "cuda:"])
def test_bad_device_is_a_config_error(device):
    with pytest.raises(ConfigError, match="device"):
        resolve_backend("torch", device=device)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_without_the_module_falls_back_to_onnxruntime_with_one_warning():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        choice = resolve_backend("tensorrt", supported=("onnxruntime", "tensorrt"), what="re-ID embedder")
    fallbacks = [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
    assert len(fallbacks) == 1
    text = str(fallbacks[0].message)
    assert "re-ID embedder" in text and "tensorrt Python module is not installed" in text
    assert "using onnxruntime on cpu" in text
    assert choice.backend == "onnxruntime" and choice.device == "cpu" and choice.fell_back
    assert "not installed" in unavailable_reason("tensorrt")


def test_requested_backend_that_runs_gives_no_warning():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        choice = resolve_backend("onnxruntime", supported=("onnxruntime",))
    assert choice == BackendChoice("onnxruntime", "onnxruntime", "cpu", ())
    assert choice.describe("x") == "x: using onnxruntime on cpu"


def test_torch_on_cuda_without_a_gpu_runs_on_the_cpu_with_a_warning():
    pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    if _cuda():
        pytest.skip("a CUDA device is present: no fallback to test")
    with pytest.warns(BackendFallbackWarning, match="no CUDA device") as caught:
        choice = resolve_backend("torch", device="cuda")
    assert (choice.backend, choice.device) == ("torch", "cpu")
    text = str(caught[0].message)  # the backend runs: it is the device that was not used
    assert "requested device not used" in text and "backend 'torch' not used" not in text
    auto = resolve_backend("torch", device="auto")  # auto never warns
    assert auto.device == "cpu" and not auto.fell_back


def test_builder_failure_passes_on_to_the_next_backend_and_says_why():
    pytest.importorskip("torch", reason="torch is not installed (pip install torch): the chain's next one")
    def failing_build(choice):  # what a TensorRT build that runs out of GPU memory raises
        raise BackendUnavailable("could not build the fp16 engine (out of GPU memory)")

    builders = {"torch": lambda choice: ("built", choice.backend, choice.device),
                "onnxruntime": failing_build}
    with pytest.warns(BackendFallbackWarning, match="out of GPU memory") as record:
        built, choice = create_with_fallback("onnxruntime", builders, device="cpu", what="net")
    assert len(record) == 1
    assert built == ("built", "torch", "cpu") and choice.backend == "torch"
    assert choice.skipped[0][0] == "onnxruntime"


def test_errors_every_backend_would_hit_are_not_swallowed(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    def missing_model(choice):
        raise FileNotFoundError(tmp_path / "none.onnx")

    with pytest.raises(FileNotFoundError):
        create_with_fallback("onnxruntime", {"onnxruntime": missing_model, "torch": missing_model})


def test_no_backend_left_lists_every_reason():
    # else the chain has no torch to try, or onnxruntime is passed over as not installed, not as broken
    pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    def unavailable(choice):
        raise BackendUnavailable(f"{choice.backend} broke")

    with pytest.raises(BackendUnavailable, match=r"no backend can run here.*onnxruntime broke.*torch broke"):
        create_with_fallback("onnxruntime", {"onnxruntime": unavailable, "torch": unavailable}, what="net")


def test_a_bad_device_is_a_config_error_where_the_backend_is_not_installed():
    """Without torch, device: gpu was reported as "no backend can run here" instead of a bad value."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None  # as where torch is not installed\n"
            "from ros2_tracker.backends.selection import resolve_backend\n"
            "from ros2_tracker.core.config import ConfigError\n"
            "from ros2_tracker.backends.selection import create_with_fallback\n"
            "for call in (lambda: resolve_backend('torch', device='gpu'),\n"
            "             lambda: create_with_fallback('torch', {'torch': print}, device='gpu')):\n"
            "    try:\n        call()\n"
            "    except ConfigError as exc:\n        print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["device: 'gpu' is not one of auto, cpu, cuda, cuda:N"] * 2, out.stderr
