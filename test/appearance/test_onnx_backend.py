"""OSNet x0.25 through ``OnnxEmbedder`` on real TUD-Campus crops (needs ../shared)."""

import cv2
import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.appearance import Embedder, EmbedderConfig, EmbedderLoadError, create_embedder, embed_result
from ros2_tracker.core.appearance import unoccluded
from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.io.mot import read_mot

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def osnet_path():
    return require_shared("models", "osnet_x0_25_msmt17.onnx")


@pytest.fixture(scope="module")
def osnet(osnet_path):
    return create_embedder(EmbedderConfig(model_path=str(osnet_path)))


def tud_frame(frame):
    root = require_shared("data", "TUD-Campus")
    gt = read_mot(root / "gt" / "gt.txt")
    rows = gt.frames == frame
    image = cv2.imread(str(root / "img1" / f"{frame:06d}.jpg"))
    return image, gt.ids[rows], tlwh_to_xyxy(gt.boxes_tlwh[rows])


def test_embeddings_are_unit_512_float32(osnet):
    image, _, boxes = tud_frame(1)
    f = osnet.embed(image, boxes)
    assert isinstance(osnet, Embedder)
    assert osnet.dim == 512 and "osnet_x0_25_msmt17.onnx" in osnet.name
    assert f.shape == (len(boxes), 512) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)


def test_same_person_in_two_frames_is_closer_than_other_people(osnet):
    """Frames 5 and 25 (0.8 s apart): the four people no other person overlaps (IoU <= 0.3) in both."""
    img_a, ids_a, boxes_a = tud_frame(5)
    img_b, ids_b, boxes_b = tud_frame(25)
    clear_a, clear_b = unoccluded(boxes_a, 0.3), unoccluded(boxes_b, 0.3)
    people = np.intersect1d(ids_a[clear_a], ids_b[clear_b])
    assert len(people) == 4
    rows_a = [int(np.flatnonzero(ids_a == i)[0]) for i in people]
    rows_b = [int(np.flatnonzero(ids_b == i)[0]) for i in people]
    dist = 1.0 - osnet.embed(img_a, boxes_a[rows_a]) @ osnet.embed(img_b, boxes_b[rows_b]).T
    same = np.diag(dist)
    other = dist[~np.eye(len(people), dtype=bool)]
    assert same.max() < other.min()  # every person is nearer to themselves than to anybody else
    assert same.mean() < 0.5 * other.mean()


def test_unusable_boxes_give_zero_rows_not_errors(osnet):
    image, _, boxes = tud_frame(1)
    bad = np.array([[-100, -100, -10, -10], [700, 0, 900, 100], [50, 50, 50, 200], [np.nan, 0, 10, 10]])
    res = embed_result(osnet, image, np.concatenate([boxes[:2], bad]))
    assert res.valid.tolist() == [True, True, False, False, False, False]
    assert not res.all_valid
    assert np.all(res.features[2:] == 0)
    np.testing.assert_allclose(res.features[:2], osnet.embed(image, boxes[:2]), atol=1e-5)
    assert osnet.embed(image, np.empty((0, 4))).shape == (0, 512)


def test_batching_gives_the_same_embeddings(osnet_path):
    image, _, boxes = tud_frame(1)
    boxes = np.concatenate([boxes, boxes + 5])
    one = create_embedder(EmbedderConfig(model_path=str(osnet_path), batch_size=1)).embed(image, boxes)
    three = create_embedder(EmbedderConfig(model_path=str(osnet_path), batch_size=3)).embed(image, boxes)
    every = create_embedder(EmbedderConfig(model_path=str(osnet_path), batch_size=64)).embed(image, boxes)
    np.testing.assert_allclose(one, every, atol=1e-4)
    np.testing.assert_allclose(three, every, atol=1e-4)
    # more boxes than a batch, unusable ones among them: embedded a batch at a time, rows in box order
    bad = np.array([[np.nan, 0, 10, 10], [700, 0, 900, 100]])
    mixed = np.concatenate([boxes[:3], bad[:1], boxes[3:], bad[1:], boxes])
    rows = create_embedder(EmbedderConfig(model_path=str(osnet_path), batch_size=3)).embed(image, mixed)
    assert rows.shape == (len(mixed), 512)
    np.testing.assert_allclose(rows[[3, len(boxes) + 1]], 0.0)
    keep = np.isfinite(mixed).all(axis=1) & (mixed[:, 0] < 640)
    np.testing.assert_allclose(rows[keep], np.concatenate([every, every]), atol=1e-4)


def test_embedding_size_mismatch_is_a_clear_error(osnet_path):
    with pytest.raises(EmbedderLoadError, match="gives 512-dimensional embeddings, expected 256"):
        create_embedder(EmbedderConfig(model_path=str(osnet_path), embedding_dim=256))


def test_input_size_mismatch_is_a_clear_error(osnet_path):
    with pytest.raises(EmbedderLoadError, match="256x128 crops, input_size is 128x64"):
        create_embedder(EmbedderConfig(model_path=str(osnet_path), input_size=[128, 64]))


def test_wrong_kind_of_onnx_model_is_a_clear_error():
    yolox = require_shared("models", "yolox_nano.onnx")
    with pytest.raises(EmbedderLoadError, match="yolox_nano"):
        create_embedder(EmbedderConfig(model_path=str(yolox)))
    # at its own input size too: its 1 x 3549 x 85 output is not one embedding per crop (it was taken as
    # 301,665-d embeddings, and tracker_node reset its tracks for it)
    with pytest.raises(EmbedderLoadError, match=r"output shape \[1, 3549, 85\] is not N x D"):
        create_embedder(EmbedderConfig(model_path=str(yolox), input_size=[416, 416], batch_size=1))


def test_fixed_input_size_is_read_from_the_graph(osnet_path, tmp_path):
    """The crop size a model fixes (what tracker_node adopts when only reid_model_path changes), read
    without an ONNX Runtime session; None for free sizes, unreadable files and weights listed as inputs
    ahead of the image (old exports)."""
    import onnx
    from onnx import TensorProto, helper

    from ros2_tracker.appearance.backends.onnx import fixed_input_size

    assert fixed_input_size(str(osnet_path)) == (256, 128)

    def save(name, image_shape, weights_first=False):
        image = helper.make_tensor_value_info("image", TensorProto.FLOAT, image_shape)
        weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])
        listed = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1])
        inputs = [listed, image] if weights_first else [image]
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
        graph = helper.make_graph([helper.make_node("Mul", ["image", "w"], ["out"])], "g", inputs, [out],
                                  initializer=[weight])
        onnx.save(helper.make_model(graph), str(tmp_path / name))
        return str(tmp_path / name)

    assert fixed_input_size(save("fixed.onnx", ["batch", 3, 128, 64])) == (128, 64)
    assert fixed_input_size(save("old.onnx", [1, 3, 96, 48], weights_first=True)) == (96, 48)
    assert fixed_input_size(save("free.onnx", ["batch", 3, "height", "width"])) is None
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a model at all")
    assert fixed_input_size(str(tmp_path / "junk.onnx")) is None
    assert fixed_input_size(str(tmp_path / "missing.onnx")) is None
