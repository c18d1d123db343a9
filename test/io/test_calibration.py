"""Tsai calibration (PETS 2009) -> exact ground mapping and the fitted image-to-ground homography."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.io.calibration import (
    TsaiCamera,
    fit_ground_homography,
    load_ground_homography,
    orient_homography,
    read_tsai_xml,
)
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
    for name, content in (("unclosed.txt", b"[1, 2, 3"), ("binary.txt", b"\xff\xfe\x00")):  # were tracebacks
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError, match="9 numbers"):
            load_ground_homography(tmp_path / name)


_GOOD_XML = """<Camera>
  <Geometry width="768" height="576" dpx="5.1e-03" dy="4.65e-03"/>
  <Intrinsic focal="5.55" kappa1="5.1e-03" cx="324.2" cy="282.6" sx="1.09"/>
  <Extrinsic tx="828.7" ty="-3175.5" tz="35469.3" rx="2.04" ry="-0.893" rz="-0.431"/>
</Camera>"""


@pytest.mark.parametrize(("old", "new", "message"), [
    ('focal="5.55" ', "", r'<Intrinsic> has no focal="..." attribute'),
    ('ty="-3175.5"', 'ty="south"', r'<Extrinsic ty="south"> is not a number'),
    ('kappa1="5.1e-03"', 'kappa1="nan"', r'<Intrinsic kappa1="nan"> is not finite'),
    ('width="768"', 'width="inf"', r'<Geometry width="inf"> is not finite'),
    ('dpx="5.1e-03"', 'dpx="0"', r'<Geometry dpx="0"> must be positive'),
    ('width="768"', 'width="-5"', r'<Geometry width="-5"> must be positive'),
    ('focal="5.55"', 'focal="0"', r'<Intrinsic focal="0"> must be positive'),
])
def test_a_calibration_with_a_missing_or_bad_number_is_refused_naming_it(tmp_path, old, new, message):
    good = tmp_path / "good.xml"
    good.write_text(_GOOD_XML)
    assert read_tsai_xml(good).focal == pytest.approx(5.55)
    bad = tmp_path / "bad.xml"
    bad.write_text(_GOOD_XML.replace(old, new))
    with pytest.raises(ConfigError, match="not a valid Tsai calibration file") as err:
        read_tsai_xml(bad)
    assert message in str(err.value)


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


def _camera_seeing_the_horizon() -> TsaiCamera:
    """5 m up, tilted 10 degrees down: the top of the 768 x 576 image is sky (the horizon near v = 200)."""
    t = np.radians(10.0)
    rot = np.array([[1, 0, 0], [0, -np.sin(t), -np.cos(t)], [0, np.cos(t), -np.sin(t)]])
    return TsaiCamera(focal=5.0, kappa1=0.0, cx=384, cy=288, sx=1.0, dpx=0.01, dy=0.01, rotation=rot,
                      translation=-rot @ np.array([0.0, 0.0, 5000.0]), width=768, height=576)


def test_a_camera_that_sees_the_horizon_gets_a_homography_that_puts_the_ground_in_front():
    """Scaled by its corner entry alone, the fitted homography had the opposite sign when pixel (0, 0) is
    sky: every point on the ground read as above the horizon, and every ground distance was NaN."""
    from ros2_tracker.core.costs import ground_distance

    cam = _camera_seeing_the_horizon()
    h = fit_ground_homography(cam)
    feet = np.array([[384.0, 500.0], [384.0, 400.0]])
    exact = cam.image_to_ground(feet) / 1000.0
    box = lambda u, v: np.array([[u - 10.0, v - 60.0, u + 10.0, v]])  # noqa: E731
    d = ground_distance(box(384, 500), box(384, 400), h)
    assert d[0, 0] == pytest.approx(np.linalg.norm(exact[0] - exact[1]), rel=0.02)
    assert ground_distance(box(384, 100), box(684, 100), h)[0, 0] == np.inf  # both above it: far, not NaN


def test_a_homography_given_with_the_opposite_sign_is_turned_round_by_the_detections():
    h = fit_ground_homography(_camera_seeing_the_horizon()).ravel().tolist()
    boxes = np.array([[374.0, 440.0, 394.0, 500.0], [600.0, 400.0, 620.0, 450.0]])
    assert orient_homography(h, boxes) == (h, False)
    flipped, changed = orient_homography([-v for v in h], boxes)
    assert changed and flipped == pytest.approx(h)
