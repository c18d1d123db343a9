"""The D2Go Faster R-CNN as a BoxRegressor: real model, real TUD-Campus frames."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.regression.backends.d2go import decode_deltas
from ros2_tracker.regression.config import RegressorConfig, RegressorLoadError
from ros2_tracker.regression.regressor import BoxRegressor

from .conftest import gt_boxes, read_frame

pytestmark = pytest.mark.data

BACKGROUND = np.array([[0.0, 0.0, 60.0, 120.0], [560.0, 0.0, 640.0, 100.0], [300.0, 420.0, 360.0, 478.0]])


def test_is_a_box_regressor(d2go):
    assert isinstance(d2go, BoxRegressor)
    assert d2go.name.startswith("d2go:")


def test_person_scores_high_on_gt_boxes_low_on_background(d2go, tud):
    feats = d2go.encode(read_frame(tud, 1))
    on_gt = d2go.regress(feats, gt_boxes(tud, 1)).scores
    assert len(on_gt) == 6 and np.median(on_gt) > 0.9 and on_gt.min() > 0.5
    assert d2go.regress(feats, BACKGROUND).scores.max() < 0.1


def test_regression_moves_jittered_boxes_closer_to_gt(d2go, tud):
    gt = gt_boxes(tud, 1)
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    sign = np.where(np.arange(len(gt)) % 2 == 0, 1.0, -1.0)
    jittered = gt + np.stack([0.15 * w * sign, 0.1 * h, 0.15 * w * sign, -0.05 * h], axis=1)
    reg = d2go.regress(d2go.encode(read_frame(tud, 1)), jittered)
    before = np.diag(iou_matrix(jittered, gt)).mean()
    after = np.diag(iou_matrix(reg.boxes_xyxy, gt)).mean()
    assert after > before + 0.05, (before, after)


def test_detect_finds_the_annotated_people(d2go, tud):
    det = d2go.detect(d2go.encode(read_frame(tud, 1)))
    confident = det.boxes_xyxy[det.scores > 0.5]
    found = (iou_matrix(gt_boxes(tud, 1), confident).max(axis=1) >= 0.5).sum()
    assert found >= 5
    assert (det.boxes_xyxy[:, 2] <= 640).all() and (det.boxes_xyxy[:, 3] <= 480).all()


def test_empty_and_bad_boxes(d2go, tud):
    feats = d2go.encode(read_frame(tud, 1))
    empty = d2go.regress(feats, np.empty((0, 4)))
    assert empty.boxes_xyxy.shape == (0, 4) and empty.scores.shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        d2go.regress(feats, np.array([[np.nan, 0, 10, 10]]))
    with pytest.raises(ValueError, match="image"):
        d2go.encode(np.zeros((10, 10), dtype=np.uint8))


def test_zero_deltas_keep_the_box():
    boxes = np.array([[10.0, 20.0, 50.0, 120.0]])
    np.testing.assert_allclose(decode_deltas(boxes, np.zeros((1, 4))), boxes)
    moved = decode_deltas(boxes, np.array([[1.0, 0.0, 0.0, 0.0]]))  # dx = 1/10 of the width
    np.testing.assert_allclose(moved, boxes + np.array([4.0, 0.0, 4.0, 0.0]))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_bad_model_files_give_clear_errors(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")

    from ros2_tracker.regression.factory import create_regressor

    with pytest.raises(RegressorLoadError, match="file not found"):
        create_regressor(RegressorConfig(regressor_model_path=str(tmp_path / "none.pt")))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(RegressorLoadError, match="not a TorchScript archive"):
        create_regressor(RegressorConfig(regressor_model_path=str(junk)))
    other = tmp_path / "other.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(other))
    with pytest.raises(RegressorLoadError, match="not a D2Go Faster R-CNN"):
        create_regressor(RegressorConfig(regressor_model_path=str(other)))


def test_config_needs_a_model_path():
    from ros2_tracker.core.config import ConfigError

    with pytest.raises(ConfigError, match="regressor_model_path"):
        RegressorConfig()
