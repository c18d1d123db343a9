"""Backend registry, SotConfig and create_follower: choices follow the registry, clear errors."""

from __future__ import annotations

import pytest
from conftest import require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.sot.factory import BACKENDS, SotConfig, create_follower, create_sot_tracker
from ros2_tracker.sot.node_config import SotNodeConfig, sot_param_names
from ros2_tracker.sot.tracker_base import SingleTargetTracker


def test_registry_is_a_plain_dict_and_the_config_offers_exactly_its_names():
    assert type(BACKENDS) is dict and {"nano", "mil"} <= set(BACKENDS)
    spec = next(s for s in SotConfig.specs() if s.name == "backend")
    assert spec.choices == tuple(BACKENDS) and spec.default == "nano"


def test_nano_and_mil_are_built_by_name():
    # (the learned backends import torch: test/sot/test_goturn.py etc. build them)
    nano = str(require_shared("models", "nanotrack_v2"))
    for name in ("nano", "mil"):
        tracker = create_sot_tracker(SotConfig(backend=name, model_path=nano if name == "nano" else ""))
        runtime = "onnxruntime" if name == "nano" else "opencv"
        assert isinstance(tracker, SingleTargetTracker) and tracker.name.startswith(f"{name}:{runtime}")


def test_config_and_factory_errors_name_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match="backend: 'kcf' is not one of"):
        SotConfig(backend="kcf")
    with pytest.raises(ConfigError, match="model_path: '' is not a folder"):
        create_sot_tracker(SotConfig())
    with pytest.raises(ConfigError, match="detector_model_path: needs reid_model_path"):
        create_follower(SotConfig(backend="mil"), detector_model_path="yolox_nano.onnx")
    with pytest.raises(ConfigError, match="detector_model_path: needs reid_model_path"):
        SotNodeConfig(detector_model_path="yolox_nano.onnx")
    # the ONNX Runtime embedder looks at the file; without onnxruntime: the next test
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with pytest.raises(ConfigError, match=r"reid_model_path: .*nowhere.onnx"):
        create_follower(SotConfig(backend="mil"), reid_model_path=str(tmp_path / "nowhere.onnx"))


def test_a_missing_embedder_runtime_names_reid_model_path():
    """Without onnxruntime (a robot's colcon test) the reid_ prefix garbled the message: 'reid_re-ID embedder
    (onnxruntime): no backend can run here (...)'."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnxruntime'] = None  # as where onnxruntime is not installed\n"
            "from ros2_tracker.core.config import ConfigError\n"
            "from ros2_tracker.sot.factory import SotConfig, create_follower\n"
            "try:\n    create_follower(SotConfig(backend='mil'), reid_model_path='osnet.onnx')\n"
            "except ConfigError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("reid_model_path: re-ID embedder (onnxruntime): no backend can run here"), \
        out.stdout + out.stderr
    assert "onnxruntime is not installed" in out.stdout


def test_create_follower_loads_the_reacquisition_models():
    follower = create_follower(SotConfig(backend="mil"),
                               detector_model_path=str(require_shared("models", "yolox_nano.onnx")),
                               reid_model_path=str(require_shared("models", "osnet_x0_25_msmt17.onnx")))
    assert follower.name == "mil:opencv" and not follower.active
    assert follower._detector is not None and follower._embedder.dim == 512


def test_sot_yaml_sets_only_valid_parameters_of_sot_node():
    from conftest import REPO

    from ros2_tracker.io.params import load_config, load_ros_yaml
    from ros2_tracker.sot.follower import FollowerConfig

    path = REPO / "config" / "sot.yaml"
    assert set(load_ros_yaml(path)) <= sot_param_names()
    for cls in (SotConfig, FollowerConfig, SotNodeConfig):
        load_config(cls, path, allowed_extra=sot_param_names())  # every value valid
