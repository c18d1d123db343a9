"""``ros2-tracker build-engine`` without a GPU: options, profiles and the one-line errors (exit 2 in main)."""

import argparse
import importlib.util

import pytest
from conftest import require_shared

from ros2_tracker.cli import engine
from ros2_tracker.cli.errors import UserError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    engine.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["build-engine", *argv])


@pytest.mark.parametrize("text,expected", [
    ("images=1x3x8x4/4x3x8x4/8x3x8x4", ("images", [(1, 3, 8, 4), (4, 3, 8, 4), (8, 3, 8, 4)])),
    ("x=2x3", ("x", [(2, 3)] * 3)),
])
def test_parse_shape(text, expected):
    assert engine.parse_shape(text) == expected


@pytest.mark.parametrize("text", ["images", "=1x3", "images=1x3/2x3", "images=ax3", "images=0x3"])
def test_parse_shape_rejects_bad_text(text):
    with pytest.raises(UserError, match="--shape"):
        engine.parse_shape(text)


def test_precision_flags_and_symbolic_batch_profile():
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    args = _args(str(osnet), "--int8", "--batch", "16", "--max-batch", "64")
    assert args.precision == "int8" and args.run is engine.run
    want = [(1, 3, 256, 128), (16, 3, 256, 128), (64, 3, 256, 128)]
    assert engine._profile_shapes(args) == {"images": want}
    assert _args(str(osnet)).precision == "fp16"


@pytest.mark.parametrize("extra,message", [
    (["--shape", "images=8x3x128x64"], "input size mismatch"),
    (["--int8"], "--calib-frames"),
])
def test_bad_profiles_and_missing_calibration_are_user_errors(extra, message):
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    with pytest.raises(UserError, match=message):
        engine.run(_args(str(osnet), *extra))


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="ONNX file not found"):
        engine.run(_args(str(tmp_path / "none.onnx")))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_without_tensorrt_the_command_says_so(tmp_path):
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    with pytest.raises(UserError, match="tensorrt Python module is not installed"):
        engine.run(_args(str(osnet), "--cache-dir", str(tmp_path)))
    assert not list(tmp_path.iterdir())


def test_int8_calibration_is_the_embedders_own_so_its_first_start_reuses_the_engine(tmp_path):
    """The engine key holds a hash of the calibration batches: build-engine must calibrate on exactly what
    the TensorRT embedder would (it took up to 32 batches without .bmp, the embedder 16 with them)."""
    import cv2
    import numpy as np

    from ros2_tracker.appearance.backends.tensorrt import calibration_batches
    from ros2_tracker.appearance.config import EmbedderConfig

    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    rng = np.random.default_rng(0)
    for i in range(40):  # 40 crops, every fourth a .bmp
        cv2.imwrite(str(tmp_path / f"c{i:02d}.{'bmp' if i % 4 == 0 else 'png'}"),
                    rng.integers(0, 255, (60, 30, 3), dtype=np.uint8))
    args = _args(str(osnet), "--int8", "--batch", "2", "--calib-frames", str(tmp_path))
    ours = engine._calibration(args, engine._profile_shapes(args))
    theirs = calibration_batches(tmp_path, EmbedderConfig(input_size=[256, 128]), 2)
    assert len(ours) == len(theirs) == 16
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
