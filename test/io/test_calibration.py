"""Tsai calibration (PETS 2009) -> exact ground mapping and the fitted image-to-ground homography."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.io.calibration import fit_ground_homography, load_ground_homography, read_tsai_xml
from ros2_tracker.io.mot import read_mot


@pytest.fixture
def pets():
    root = require_shared("data", "PETS09-S3MF1")
    return read_tsai_xml(root / "alt" / "View_001_calibration.xml"), read_mot(root / "gt" / "gt.txt",
                                                                                validate_boxes=False)


def feet(rows):
    b = rows.boxes_tlwh
    return np.c_[b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3]]


@pytest.mark.data
def test_exact_model_reproduces_the_annotated_world_position(pets):
    cam, gt = pets
    # gt row 1 (frame 1, id 1) carries world coordinates [mm] of its foot point
    world = cam.image_to_ground(feet(gt)[:1])
    assert world[0] == pytest.approx(gt.extra[0, :2], abs=5.0)
    assert cam.ground_to_image(world) == pytest.approx(feet(gt)[:1], abs=1e-6)


@pytest.mark.data
def test_fitted_homography_is_close_to_the_exact_model(pets):
    cam, gt = pets
    h = fit_ground_homography(cam)
    f = feet(gt)
    p = np.c_[f, np.ones(len(f))] @ h.T
    approx_m = p[:, :2] / p[:, 2:]
    exact_m = cam.image_to_ground(f) / 1000.0
    assert np.linalg.norm(approx_m - exact_m, axis=1).max() < 0.15  # lens distortion, at most 15 cm


def test_homography_file_and_bad_files(tmp_path):
    f = tmp_path / "h.yaml"
    f.write_text("ground_homography: [1, 0, 0, 0, 1, 0, 0, 0, 1]\n")
    assert load_ground_homography(f) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("ground_homography: [1, 2]\n")
    with pytest.raises(ConfigError, match="9 numbers"):
        load_ground_homography(bad)
    xml = tmp_path / "c.xml"
    xml.write_text("<Camera><Geometry/></Camera>")
    with pytest.raises(ConfigError, match="Tsai"):
        load_ground_homography(xml)
    with pytest.raises(ConfigError, match="not found"):
        load_ground_homography(tmp_path / "missing.xml")


@pytest.mark.data
def test_track_cli_uses_the_calibration(tmp_path):
    import subprocess

    from conftest import CLI

    root = require_shared("data", "PETS09-S3MF1")
    out = tmp_path / "r.txt"
    r = subprocess.run([str(CLI), "track", "--detections", str(root / "det" / "det.txt"),
                        "--output", str(out),
                        "--calibration", str(root / "alt" / "View_001_calibration.xml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(read_mot(out))
