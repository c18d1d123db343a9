"""TensorRT engine cache and checks that need no GPU: cache keys, the sidecar, corrupt or mismatched
engine files, shape profiles against the ONNX inputs. Engine builds are in test_gpu.py."""

import dataclasses
import importlib.util
import json
import shutil

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.backends.selection import BackendUnavailable
from ros2_tracker.backends.tensorrt import (
    EngineFileError,
    EngineInputError,
    EngineKey,
    EngineUnavailable,
    TensorRTEngine,
    check_input_shape,
    engine_path,
    file_sha256,
    make_profile,
    onnx_inputs,
    onnx_sha256,
    profile_text,
    read_engine,
    write_engine,
)

onnx = pytest.importorskip("onnx")

KEY = EngineKey(onnx_sha256="a" * 64, tensorrt_version="10.3.0", gpu_name="Orin", precision="fp16",
                profile="images:1x3x256x128/32x3x256x128/32x3x256x128")


def _tiny_onnx(path, scale: float):
    """A one-node model ``y = x * scale`` with input ``x`` of shape ``batch x 3 x 8 x 4``."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 8, 4])
    s = helper.make_tensor("s", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "s"], ["y"])], "tiny", [x], [y], [s])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("field,value", [
    ("onnx_sha256", "b" * 64), ("tensorrt_version", "10.4.0"), ("gpu_name", "NVIDIA H100"),
    ("precision", "int8"), ("profile", "images:1x3x256x128/64x3x256x128/64x3x256x128"),
    ("calibration", "c" * 64),
])
def test_cache_key_changes_with_each_thing_the_engine_depends_on(tmp_path, field, value):
    other = dataclasses.replace(KEY, **{field: value})
    assert other.digest() != KEY.digest()
    assert engine_path(tmp_path, "osnet.onnx", other) != engine_path(tmp_path, "osnet.onnx", KEY)
    assert KEY.differences(other) == [f"{field}: {getattr(KEY, field)!r} != {value!r}"]


def test_cache_key_follows_the_model_bytes(tmp_path):
    a, b = _tiny_onnx(tmp_path / "a.onnx", 2.0), _tiny_onnx(tmp_path / "b.onnx", 3.0)
    c = shutil.copy(a, tmp_path / "c.onnx")
    assert file_sha256(a) != file_sha256(b) and file_sha256(a) == file_sha256(c)
    keys = [dataclasses.replace(KEY, onnx_sha256=file_sha256(p)) for p in (a, b)]
    assert engine_path(tmp_path, a, keys[0]).name.startswith("a.fp16.")
    assert engine_path(tmp_path, a, keys[0]) != engine_path(tmp_path, a, keys[1])


def test_cache_key_follows_weights_kept_as_external_data(tmp_path):
    """New weights in model.onnx.data (the graph file unchanged) must not reuse the old weights' engine."""
    from onnx import numpy_helper

    path = _tiny_onnx(tmp_path / "m.onnx", 2.0)
    model = onnx.load(str(path))
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([2.0], np.float32), "s"))  # raw data
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").read_bytes() == np.float32(2.0).tobytes()
    graph_bytes, before = path.read_bytes(), onnx_sha256(path)
    (tmp_path / "m.onnx.data").write_bytes(np.float32(5.0).tobytes())  # retrained weights
    assert path.read_bytes() == graph_bytes and onnx_sha256(path) != before
    assert onnx_sha256(_tiny_onnx(tmp_path / "plain.onnx", 2.0)) == onnx_sha256(tmp_path / "plain.onnx")


def test_engines_written_at_once_to_one_path_never_collide(tmp_path):
    import threading

    errors = []

    def write(k):
        try:
            for _ in range(20):
                write_engine(tmp_path / "m.engine", bytes([k]) * 1000, KEY)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    read_engine(tmp_path / "m.engine")  # the engine beside its own sidecar
    assert not list(tmp_path.glob("*.tmp"))


def test_engine_and_sidecar_round_trip(tmp_path):
    plan = bytes(range(256)) * 40
    path = write_engine(tmp_path / "m.engine", plan, KEY)
    meta = json.loads((tmp_path / "m.engine.json").read_text())
    assert meta["format"] == "ros2_tracker.tensorrt_engine" and meta["engine_bytes"] == len(plan)
    data, key = read_engine(path, KEY, check=tuple(dataclasses.asdict(KEY)))
    assert data == plan and key == KEY
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-10]), "corrupt or truncated"),
    (lambda p: p.write_bytes(b"x" + p.read_bytes()[1:]), "corrupt or truncated"),
    (lambda p: p.with_name(p.name + ".json").unlink(), "no sidecar"),
    (lambda p: p.with_name(p.name + ".json").write_text("{not json"), "unreadable engine sidecar"),
    (lambda p: p.with_name(p.name + ".json").write_text('{"format": "other", "version": 1, "key": '
                                                         + json.dumps(dataclasses.asdict(KEY))
                                                         + ', "engine_sha256": "", "engine_bytes": 0}'),
     "not a ros2_tracker engine sidecar"),
    (lambda p: p.with_name(p.name + ".json").write_text('{"format": "ros2_tracker.tensorrt_engine", '
                                                         '"version": 2, "key": {"new_field": 1}}'),
     "not a ros2_tracker engine sidecar version 1"),  # a later version's key: not a TypeError
    (lambda p: p.with_name(p.name + ".json").write_text(p.with_name(p.name + ".json").read_text().replace(
        '"engine_bytes": 1000', '"engine_bytes": Infinity')),
     "unreadable engine sidecar"),  # valid JSON; int() raised OverflowError past the check
    (lambda p: p.with_name(p.name + ".json").write_text("[1, 2]"), "not a ros2_tracker engine sidecar"),
    (lambda p: p.unlink(), "engine file not found"),
])
def test_corrupt_or_foreign_engine_files_are_clear_errors(tmp_path, damage, message):
    path = write_engine(tmp_path / "m.engine", b"\x01\x02" * 500, KEY)
    damage(path)
    with pytest.raises(EngineFileError, match=message) as err:
        read_engine(path)
    assert isinstance(err.value, BackendUnavailable)  # so the factories fall back to the CPU backend
    assert "\n" not in str(err.value)


def test_engine_for_another_gpu_or_tensorrt_is_rejected_naming_the_difference(tmp_path):
    path = write_engine(tmp_path / "m.engine", b"plan", KEY)
    here = dataclasses.replace(KEY, gpu_name="NVIDIA H200", tensorrt_version="10.9.0")
    with pytest.raises(EngineFileError, match=r"gpu_name: 'Orin' != 'NVIDIA H200'.*rebuild") as err:
        read_engine(path, here)
    assert "tensorrt_version" in str(err.value)
    read_engine(path, dataclasses.replace(KEY, precision="fp32"))  # default check: version and GPU only


def test_profile_of_the_real_osnet_model_and_its_input_size_checks():
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    (spec,) = onnx_inputs(osnet)
    assert (spec.name, spec.shape, spec.dtype) == ("images", (-1, 3, 256, 128), "float32")
    with pytest.raises(EngineInputError, match="dynamic shape"):
        make_profile([spec])
    profile = make_profile([spec], {"images": [(1, 3, 256, 128), (32, 3, 256, 128), (64, 3, 256, 128)]})
    assert profile_text(profile) == "images:1x3x256x128/32x3x256x128/64x3x256x128"
    with pytest.raises(EngineInputError, match="input size mismatch"):
        make_profile([spec], {"images": (8, 3, 128, 64)})
    with pytest.raises(EngineInputError, match="rank"):
        make_profile([spec], {"images": (8, 3, 256)})
    with pytest.raises(EngineInputError, match="min <= opt <= max"):
        make_profile([spec], {"images": [(8, 3, 256, 128), (4, 3, 256, 128), (16, 3, 256, 128)]})
    with pytest.raises(EngineInputError, match="the model's inputs are"):
        make_profile([spec], {"image": (8, 3, 256, 128)})


def test_fixed_shape_model_needs_no_profile_and_inputs_are_checked_against_it():
    yolox = require_shared("models", "yolox_nano.onnx")
    profile = make_profile(onnx_inputs(yolox))
    assert profile == {"images": ((1, 3, 416, 416),) * 3}
    check_input_shape(profile, "images", (1, 3, 416, 416))
    with pytest.raises(EngineInputError, match="outside the engine's profile"):
        check_input_shape(profile, "images", (1, 3, 640, 640))
    with pytest.raises(EngineInputError, match="no input"):
        check_input_shape(profile, "input", (1, 3, 416, 416))


def test_missing_or_corrupt_onnx_file_is_a_clear_error(tmp_path):
    with pytest.raises(EngineInputError, match="not found"):
        onnx_inputs(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(EngineInputError, match="not a readable ONNX model"):
        onnx_inputs(bad)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_engine_build_without_tensorrt_says_so(tmp_path):
    model = _tiny_onnx(tmp_path / "t.onnx", 2.0)
    with pytest.raises(EngineUnavailable, match="tensorrt Python module is not installed"):
        TensorRTEngine.from_onnx(model, tmp_path / "cache", "fp16", shapes={"x": (1, 3, 8, 4)})
    with pytest.raises(EngineInputError, match="precision"):
        TensorRTEngine.from_onnx(model, tmp_path / "cache", "fp8")
