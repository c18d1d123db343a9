"""Fixtures of the regression (Tracktor) tests: the real D2Go model and real TUD-Campus frames."""

from __future__ import annotations

import pytest
from conftest import require_shared

D2GO = ("models", "d2go_faster_rcnn", "d2go_faster_rcnn_fbnetv3a_C4_int8_coco.pt")


@pytest.fixture(scope="session")
def d2go_path():
    # the D2Go archive is TorchScript
    pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    return require_shared(*D2GO)


@pytest.fixture(scope="session")
def d2go(d2go_path):
    from ros2_tracker.regression.config import RegressorConfig
    from ros2_tracker.regression.factory import create_regressor

    return create_regressor(RegressorConfig(regressor_model_path=str(d2go_path)))


@pytest.fixture(scope="session")
def tud():
    return require_shared("data", "TUD-Campus")


def read_frame(seq, frame: int):
    import cv2

    image = cv2.imread(str(seq / "img1" / f"{frame:06d}.jpg"))
    assert image is not None
    return image


def gt_boxes(seq, frame: int):
    from ros2_tracker.core.boxes import tlwh_to_xyxy
    from ros2_tracker.io.mot import read_mot

    gt = read_mot(seq / "gt" / "gt.txt")
    return tlwh_to_xyxy(gt.boxes_tlwh[gt.frames == frame])
