"""ONNX export of the re-ID model: parity with PyTorch, dynamic batch, NCHW input, unit embeddings."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from ros2_tracker.appearance.export import ExportError, export_onnx, onnx_parity  # noqa: E402
from ros2_tracker.appearance.torch_model import ReidEmbeddingNet, ReidModelConfig  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    config = ReidModelConfig(embedding_dim=32, input_height=64, input_width=32, num_classes=4)
    model = ReidEmbeddingNet(config)
    # training-mode batch norm once, so the running statistics are not the identity
    model.train()
    with torch.no_grad():
        model.forward_train(torch.randn(8, 3, 64, 32))
    model.eval()
    path = tmp_path_factory.mktemp("export") / "reid.onnx"
    return model, export_onnx(model, path)


def test_export_parity_below_1e4(exported):
    _, report = exported
    assert report.max_abs_diff < 1e-4
    assert report.max_norm_error < 1e-5
    assert report.input_shape == (3, 64, 32) and report.embedding_dim == 32


def test_exported_file_runs_in_onnxruntime_with_nchw_input_and_any_batch(exported):
    model, report = exported
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    assert inp.name == "images" and inp.shape[1:] == [3, 64, 32] and not isinstance(inp.shape[0], int)
    for n in (1, 7):
        x = np.random.default_rng(n).standard_normal((n, 3, 64, 32)).astype(np.float32)
        out = session.run(None, {"images": x})[0]
        assert out.shape == (n, 32)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(out, model(torch.from_numpy(x)).numpy(), atol=1e-4)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["ros2_tracker.input_size"] == "64,32" and meta["ros2_tracker.embedding_dim"] == "32"


def test_exported_model_loads_in_the_onnx_embedder_backend(exported):
    pytest.importorskip("cv2")
    from ros2_tracker.appearance import EmbedderConfig, create_embedder

    _, report = exported
    embedder = create_embedder(EmbedderConfig(model_path=str(report.path), input_size=[64, 32]))
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    emb = embedder.embed(image, np.array([[10, 10, 40, 90], [50, 5, 100, 110]], dtype=float))
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_parity_check_detects_a_different_model(exported, tmp_path):
    model, report = exported
    other = ReidEmbeddingNet(model.config)  # fresh random weights
    diff, _ = onnx_parity(other, report.path)
    assert diff > 1e-3
    (tmp_path / "bad.onnx").write_bytes(b"nonsense")
    with pytest.raises(ExportError, match="cannot load"):
        onnx_parity(model, tmp_path / "bad.onnx")
