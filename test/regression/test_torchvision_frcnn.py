"""The torchvision Faster R-CNN box regressor: model, weights, checkpoints, backends and the ONNX split.

Real frames of ../shared (TUD-Campus, MOT17-mini); a small network input (128 px) keeps each test fast.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
cv2 = pytest.importorskip("cv2")

from conftest import require_shared  # noqa: E402

from ros2_tracker.core.config import ConfigError  # noqa: E402
from ros2_tracker.regression.backends.torchvision_frcnn import (  # noqa: E402
    DetectorCheckpointError,
    FrcnnModelConfig,
    FrcnnRegressorConfig,
    OnnxFrcnnRegressor,
    RegressorLoadError,
    RoiHeadGraph,
    TorchFrcnnRegressor,
    build_model,
    create_regressor,
    load_checkpoint,
    save_checkpoint,
)
from ros2_tracker.regression.regressor import BoxRegressor  # noqa: E402

SMALL = FrcnnModelConfig(min_size=128, max_size=192)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def frame():
    return cv2.imread(str(require_shared("data", "TUD-Campus", "img1", "000001.jpg")))


@pytest.fixture(scope="module")
def gt_boxes():
    rows = np.loadtxt(require_shared("data", "TUD-Campus", "gt", "gt.txt"), delimiter=",")
    rows = rows[rows[:, 0] == 1]
    return np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(SMALL).eval()


@pytest.fixture(scope="module")
def exported(model, frame, gt_boxes, tmp_path_factory):
    """Checkpoint + the two ONNX files of one export (shared: the export takes seconds)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ros2_tracker.regression.export import export_detector_onnx

    out = tmp_path_factory.mktemp("frcnn")
    report = export_detector_onnx(model, out, frame, boxes_xyxy=gt_boxes)
    save_checkpoint(out / "checkpoint.pt", model)
    return out, report


def test_model_starts_from_the_imagenet_mobilenet_v2_weights():
    from torchvision.models import mobilenet_v2
    from torchvision.ops.misc import FrozenBatchNorm2d

    from ros2_tracker.appearance.torch_model import load_mobilenet_v2_weights

    reference = mobilenet_v2(weights=None).features
    load_mobilenet_v2_weights(reference)
    blocks = build_model(SMALL).backbone_blocks
    assert torch.equal(blocks["0"][0].weight, reference[0][0].weight)
    assert torch.equal(blocks["18"][1].running_var, reference[18][1].running_var)
    assert isinstance(blocks["18"][1], FrozenBatchNorm2d)  # batch-norm statistics never move in training
    assert not torch.equal(build_model(SMALL, pretrained=False).backbone_blocks["0"][0].weight,
                           reference[0][0].weight)


def test_regress_scores_and_moves_boxes_in_image_pixels(model, frame, gt_boxes):
    regressor = TorchFrcnnRegressor(model)
    assert isinstance(regressor, BoxRegressor)
    features = regressor.encode(frame)
    out = regressor.regress(features, gt_boxes)
    assert out.boxes_xyxy.shape == (len(gt_boxes), 4) and out.scores.shape == (len(gt_boxes),)
    assert out.boxes_xyxy.dtype == np.float64 and out.scores.dtype == np.float64
    assert ((out.scores >= 0) & (out.scores <= 1)).all()
    h, w = frame.shape[:2]
    assert (out.boxes_xyxy >= 0).all() and (out.boxes_xyxy[:, [0, 2]] <= w).all()
    assert (out.boxes_xyxy[:, [1, 3]] <= h).all()
    # an untrained head moves boxes a little, not to another place of the frame
    assert np.abs(out.boxes_xyxy - np.clip(gt_boxes, 0, [w, h, w, h])).max() < 0.5 * h
    empty = regressor.regress(features, np.zeros((0, 4)))
    assert empty.boxes_xyxy.shape == (0, 4) and empty.scores.shape == (0,)
    detections = regressor.detect(features)
    assert detections.boxes_xyxy.shape[1] == 4 and len(detections.scores) == len(detections.boxes_xyxy)


@pytest.mark.parametrize("boxes,message", [
    (np.array([[0.0, 0.0, np.nan, 10.0]]), "NaN"),
    (np.array([[0.0, 0.0, 10.0]]), r"shape \(N, 4\)"),
    (np.array([[20.0, 0.0, 10.0, 10.0]]), "x2 < x1"),
])
def test_regress_rejects_bad_boxes(model, frame, boxes, message):
    regressor = TorchFrcnnRegressor(model)
    with pytest.raises(ValueError, match=message):
        regressor.regress(regressor.encode(frame), boxes)


def test_encode_rejects_a_float_image(model):
    with pytest.raises(ValueError, match="uint8"):
        TorchFrcnnRegressor(model).encode(np.zeros((64, 64, 3), np.float32))


def test_exported_pooling_equals_torchvision_multiscale_roialign(model, frame, gt_boxes):
    """The export's static-graph pooling computes what the training-time pooler computes."""
    regressor = TorchFrcnnRegressor(model)
    f = regressor.encode(frame)
    boxes = torch.tensor(np.r_[gt_boxes, [[0, 0, 8, 8], [0, 0, 600, 470]]] * f.scale, dtype=torch.float32)
    maps = dict(zip(("0", "1", "2", "pool"), f.maps, strict=True))
    reference = model.roi_heads.box_roi_pool(maps, [boxes], [f.input_hw])
    assert torch.equal(RoiHeadGraph(model).pool(f.maps[:3], boxes), reference)


def test_checkpoint_round_trip_with_weights_only(model, frame, gt_boxes, tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", model, extra={"iteration": 3})
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["extra"] == {"iteration": 3}
    loaded, _ = load_checkpoint(path)
    a, b = TorchFrcnnRegressor(model), TorchFrcnnRegressor(loaded)
    ra, rb = a.regress(a.encode(frame), gt_boxes), b.regress(b.encode(frame), gt_boxes)
    np.testing.assert_array_equal(ra.boxes_xyxy, rb.boxes_xyxy)


def test_checkpoint_that_does_not_fit_names_the_keys(model, tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["model"]["representation_size"] = 128  # the stored head is 256 wide
    torch.save(payload, path)
    with pytest.raises(DetectorCheckpointError, match=r"shape: roi_heads\.box_head\.fc6\.weight"):
        load_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DetectorCheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "ros2_tracker.reid_embedder", "state_dict": {}}, tmp_path / "reid.pt")
    with pytest.raises(DetectorCheckpointError, match="not a ros2_tracker detector checkpoint"):
        load_checkpoint(tmp_path / "reid.pt")
    with pytest.raises(DetectorCheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_onnx_export_matches_torch_on_a_real_frame(exported):
    _, report = exported
    print(report.summary())
    assert set(report.max_rel_diff) == {"fpn0", "fpn1", "fpn2", "fpn_pool", "scores", "regressed_boxes"}
    assert report.worst <= 1e-3


def test_onnxruntime_backend_equals_torch_backend(model, exported, gt_boxes):
    out, _ = exported
    frame = cv2.imread(str(require_shared("data", "MOT17-mini", "train", "MOT17-02-FRCNN", "img1",
                                          "000001.jpg")))  # 1080p: other sizes than the traced frame
    config = FrcnnRegressorConfig(backend="onnxruntime", checkpoint_path=str(out / "checkpoint.pt"),
                                  num_threads=1)
    onnx, ref = create_regressor(config), TorchFrcnnRegressor(model)
    assert isinstance(onnx, OnnxFrcnnRegressor) and onnx.model_config == SMALL
    boxes = np.r_[gt_boxes, [[1500.0, 100.0, 1700.0, 600.0]]]
    fo, ft = onnx.encode(frame), ref.encode(frame)
    a, b = onnx.regress(fo, boxes), ref.regress(ft, boxes)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=0.05)  # image px
    assert onnx.regress(fo, np.zeros((0, 4))).boxes_xyxy.shape == (0, 4)
    np.testing.assert_allclose(onnx.detect(fo).scores, ref.detect(ft).scores, atol=1e-4)


def test_onnxruntime_backend_rejects_wrong_files(exported, tmp_path):
    _, report = exported
    swapped = FrcnnRegressorConfig(backend="onnxruntime", backbone_onnx=str(report.roi_heads),
                                   roi_heads_onnx=str(report.backbone))
    with pytest.raises(RegressorLoadError, match="not the expected graph"):
        OnnxFrcnnRegressor(swapped)
    (tmp_path / "broken.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(RegressorLoadError, match="not a loadable ONNX model"):
        OnnxFrcnnRegressor(FrcnnRegressorConfig(backbone_onnx=str(tmp_path / "broken.onnx"),
                                                roi_heads_onnx=str(report.roi_heads)))
    with pytest.raises(RegressorLoadError, match="file not found"):
        OnnxFrcnnRegressor(FrcnnRegressorConfig(checkpoint_path=str(tmp_path / "none" / "checkpoint.pt")))
    no_checkpoint = OnnxFrcnnRegressor(FrcnnRegressorConfig(backbone_onnx=str(report.backbone),
                                                            roi_heads_onnx=str(report.roi_heads)))
    with pytest.raises(RegressorLoadError, match="needs checkpoint_path"):
        no_checkpoint.detect(no_checkpoint.encode(np.zeros((48, 64, 3), np.uint8)))


def test_tensorrt_falls_back_to_onnxruntime_with_a_warning(exported):
    from ros2_tracker.backends.selection import BackendFallbackWarning, unavailable_reason

    if unavailable_reason("tensorrt") is None:
        pytest.skip("TensorRT and a CUDA device are present: no fallback to see")
    out, _ = exported
    config = FrcnnRegressorConfig(backend="tensorrt", checkpoint_path=str(out / "checkpoint.pt"))
    with pytest.warns(BackendFallbackWarning, match="onnxruntime"):
        regressor = create_regressor(config)
    assert isinstance(regressor, OnnxFrcnnRegressor)


def test_torch_backend_needs_a_checkpoint():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RegressorLoadError, match="checkpoint_path is not set"):
            create_regressor(FrcnnRegressorConfig(backend="torch", device="cpu"))


@pytest.mark.parametrize("changes,field", [
    ({"anchor_sizes": [32.0, 64.0, 128.0]}, "anchor_sizes"),
    ({"aspect_ratios": [0.0]}, "aspect_ratios"),
    ({"min_size": 400, "max_size": 300}, "max_size"),
    ({"fpn_channels": 0}, "fpn_channels"),
])
def test_model_config_rejects_invalid_values(changes, field):
    with pytest.raises(ConfigError, match=field):
        FrcnnModelConfig(**changes)


@pytest.mark.parametrize("changes,field", [({"backend": "tflite"}, "backend"), ({"device": "gpu"}, "device")])
def test_regressor_config_rejects_invalid_values(changes, field):
    with pytest.raises(ConfigError, match=field):
        FrcnnRegressorConfig(**changes)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_tracktor_factory_builds_the_torchvision_detector(model, exported, frame, gt_boxes, runtime):
    """RegressorConfig(regressor_backend="torchvision") gives Tracktor this detector, in either runtime."""
    from ros2_tracker.regression.config import RegressorConfig
    from ros2_tracker.regression.factory import create_regressor

    out, _ = exported
    reg = create_regressor(RegressorConfig(regressor_backend="torchvision", regressor_runtime=runtime,
                                           regressor_model_path=str(out / "checkpoint.pt")))
    assert isinstance(reg, BoxRegressor) and runtime in reg.name
    ref = TorchFrcnnRegressor(model)
    got, want = reg.regress(reg.encode(frame), gt_boxes), ref.regress(ref.encode(frame), gt_boxes)
    np.testing.assert_allclose(got.boxes_xyxy, want.boxes_xyxy, rtol=1e-3, atol=1e-2)
