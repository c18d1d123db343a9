"""Crop pipeline, embedder config and backend selection (no model file needed)."""

import numpy as np
import pytest

from ros2_tracker.appearance import (
    EmbedderConfig,
    EmbedderLoadError,
    create_embedder,
    crop_regions,
    extract_crops,
    to_network_input,
    valid_rows,
)
from ros2_tracker.core.config import ConfigError


@pytest.mark.parametrize("box,valid,region", [
    ([10, 20, 50, 100], True, [10, 20, 50, 100]),
    ([10.4, 20.6, 49.2, 99.9], True, [10, 20, 50, 100]),     # rounded outwards
    ([-30, -10, 40, 60], True, [0, 0, 40, 60]),               # clipped to the image
    ([600, 400, 700, 900], True, [600, 400, 640, 480]),
    ([-50, -50, -10, -10], False, [0, 0, 0, 0]),              # entirely outside
    ([700, 10, 800, 90], False, [0, 0, 0, 0]),
    ([10, 10, 10, 90], False, [0, 0, 0, 0]),                  # zero width
    ([50, 50, 10, 90], False, [0, 0, 0, 0]),                  # reversed corners
    ([639, 10, 700, 90], False, [0, 0, 0, 0]),                # 1 px inside: thinner than min_size
    ([np.nan, 10, 20, 90], False, [0, 0, 0, 0]),
    ([0, 10, np.inf, 90], False, [0, 0, 0, 0]),
])
def test_crop_regions_clip_and_flag_unusable_boxes(box, valid, region):
    regions, ok = crop_regions((480, 640), np.array([box], dtype=float), min_size=2.0)
    assert ok.tolist() == [valid]
    assert regions[0].tolist() == region


def test_crop_regions_shapes():
    regions, ok = crop_regions((480, 640), np.empty((0, 4)))
    assert regions.shape == (0, 4) and ok.shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        crop_regions((480, 640), np.zeros((3, 3)))


def test_extract_crops_resizes_valid_boxes_in_order():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, :100] = (255, 0, 0)    # left half blue (BGR)
    image[:, 100:] = (0, 0, 255)    # right half red
    boxes = np.array([[110, 10, 190, 90], [-20, -20, -5, -5], [10, 10, 90, 90]], dtype=float)
    crops, valid = extract_crops(image, boxes, (16, 8))
    assert valid.tolist() == [True, False, True]
    assert crops.shape == (2, 16, 8, 3) and crops.dtype == np.uint8
    assert (crops[0] == (0, 0, 255)).all() and (crops[1] == (255, 0, 0)).all()


@pytest.mark.parametrize("image", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                   np.zeros((10, 10, 4), np.uint8), [[0]]])
def test_extract_crops_rejects_bad_images(image):
    with pytest.raises(ValueError, match="uint8"):
        extract_crops(image, np.array([[0, 0, 5, 5]]), (8, 4))


def test_network_input_is_rgb_normalised_nchw():
    crop = np.zeros((1, 2, 3, 3), dtype=np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 0, 128, 255   # B, G, R
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = to_network_input(crop, mean, std, rgb=True)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    expected_rgb = [(1.0 - mean[0]) / std[0], (128 / 255 - mean[1]) / std[1], (0.0 - mean[2]) / std[2]]
    np.testing.assert_allclose(x[0, :, 0, 0], expected_rgb, rtol=1e-5)
    x_bgr = to_network_input(crop, mean, std, rgb=False)
    assert x_bgr[0, 0, 0, 0] == pytest.approx((0.0 - mean[0]) / std[0], rel=1e-5)


def test_valid_rows_tells_zero_rows_apart():
    f = np.zeros((3, 4), dtype=np.float32)
    f[0, 1] = 1.0
    f[2] = 0.5
    assert valid_rows(f).tolist() == [True, False, True]


@pytest.mark.parametrize("values,field", [
    ({"input_size": [256]}, "input_size"),
    ({"input_size": [256, 0]}, "input_size"),
    ({"input_size": [256.5, 128]}, "input_size"),
    ({"std": [0.2, 0.0, 0.2]}, "std"),
    ({"mean": [0.1, 0.2]}, "mean"),
    ({"batch_size": 0}, "batch_size"),
    ({"backend": "openvino"}, "backend"),
    ({"min_crop_size": 0.5}, "min_crop_size"),
])
def test_config_rejects_bad_values(values, field):
    with pytest.raises(ConfigError, match=field):
        EmbedderConfig(**values)


def test_config_defaults_are_osnets_contract():
    c = EmbedderConfig()
    assert c.input_size == [256, 128] and c.rgb and c.backend == "onnxruntime"
    assert c.mean == pytest.approx([0.485, 0.456, 0.406]) and c.std == pytest.approx([0.229, 0.224, 0.225])


@pytest.mark.filterwarnings("ignore::UserWarning")  # tensorrt -> onnxruntime fallback: test/backends/
@pytest.mark.parametrize("backend,message", [("torch", "checkpoint file not found"),
                                             ("tensorrt", "file not found")])
def test_other_backends_report_a_missing_model_clearly(backend, message):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    else:  # tensorrt falls back to onnxruntime, which then looks at the file
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with pytest.raises(EmbedderLoadError, match=message):
        create_embedder(EmbedderConfig(backend=backend, model_path="x.onnx"))


def test_missing_or_unset_model_path_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    with pytest.raises(EmbedderLoadError, match="model_path is not set"):
        create_embedder(EmbedderConfig())
    with pytest.raises(EmbedderLoadError, match="file not found"):
        create_embedder(EmbedderConfig(model_path=str(tmp_path / "none.onnx")))


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(EmbedderLoadError, match="not a loadable ONNX model"):
        create_embedder(EmbedderConfig(model_path=str(bad)))
