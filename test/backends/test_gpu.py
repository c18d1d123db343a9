"""GPU-only checks (marker ``gpu``): TensorRT engine build, cache reuse and rebuild, parity with ONNX Runtime
on real crops; the torch embedder in FP16 on CUDA against the CPU. Skipped with the reason elsewhere."""

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import require_shared

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.gpu


def _need_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


def _need_tensorrt():
    _need_cuda()
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("TensorRT not installed")


def _real_crops(n: int, size_hw=(256, 128)):
    from ros2_tracker.appearance.config import IMAGENET_MEAN, IMAGENET_STD
    from ros2_tracker.appearance.embedder import extract_crops, to_network_input

    seq = require_shared("data", "TUD-Campus")
    image = cv2.imread(str(seq / "img1" / "000001.jpg"))
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    tlwh = gt[gt[:, 0] == 1, 2:6]
    boxes = np.column_stack([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]])
    crops, _ = extract_crops(image, np.resize(boxes, (n, 4)), size_hw)
    return to_network_input(crops, IMAGENET_MEAN, IMAGENET_STD)


def test_tensorrt_osnet_engine_matches_onnxruntime_and_is_cached(tmp_path):
    _need_tensorrt()
    import onnxruntime as ort

    from ros2_tracker.backends.tensorrt import TensorRTEngine

    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    shapes = {"images": [(1, 3, 256, 128), (16, 3, 256, 128), (16, 3, 256, 128)]}
    engine = TensorRTEngine.from_onnx(osnet, tmp_path, "fp16", shapes=shapes)
    assert engine.built and engine.path.is_file()
    x = _real_crops(12)
    ref = ort.InferenceSession(str(osnet), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    out = engine.infer({"images": x})["output"]
    assert np.abs(out - ref).max() / np.abs(ref).max() <= 1e-2
    again = TensorRTEngine.from_onnx(osnet, tmp_path, "fp16", shapes=shapes)
    assert not again.built and again.path == engine.path
    engine.path.write_bytes(engine.path.read_bytes()[:-100])  # corrupt the cached engine: rebuilt
    with pytest.warns(RuntimeWarning, match="corrupt or truncated"):
        rebuilt = TensorRTEngine.from_onnx(osnet, tmp_path, "fp16", shapes=shapes)
    assert rebuilt.built


def test_tensorrt_embedder_is_chosen_without_a_warning(tmp_path):
    _need_tensorrt()
    from ros2_tracker.appearance import EmbedderConfig, create_embedder

    osnet = require_shared("models", "osnet_x0_25_msmt17.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        emb = create_embedder(EmbedderConfig(backend="tensorrt", model_path=str(osnet), batch_size=16,
                                             engine_cache_dir=str(tmp_path)))
    assert emb.name.startswith("tensorrt:") and emb.dim == 512


def test_torch_fp16_on_cuda_matches_fp32_on_cpu():
    _need_cuda()
    from ros2_tracker.appearance.torch_model import ReidEmbeddingNet, ReidModelConfig

    torch.manual_seed(0)
    model = ReidEmbeddingNet(ReidModelConfig(input_height=256, input_width=128)).eval()
    x = torch.from_numpy(_real_crops(12))
    with torch.no_grad():
        ref = model(x).numpy()
        out = model.cuda().half()(x.cuda().half()).float().cpu().numpy()
    assert np.abs(out - ref).max() / np.abs(ref).max() <= 1e-2
