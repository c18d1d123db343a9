"""Validated configuration: defaults, ranges, clear errors naming the field, YAML files."""

from pathlib import Path

import pytest

from ros2_tracker.core import ConfigError, TrackerConfig
from ros2_tracker.io.params import load_config
from ros2_tracker.nodes.node_config import TrackerNodeConfig, tracker_node_param_names

REPO = Path(__file__).resolve().parents[2]


def test_every_field_has_default_description_and_valid_default():
    for spec in TrackerConfig.specs() + TrackerNodeConfig.specs():
        assert spec.description, spec.name
    TrackerConfig()


@pytest.mark.parametrize("field,value", [
    ("match_iou", 1.5), ("match_iou", -0.1), ("min_hits", 0), ("min_hits", 2.5), ("max_lost_s", -1.0),
    ("max_lost_s", float("nan")), ("class_aware", "yes"), ("high_score", "high"),
    ("ground_homography", [1, 2, 3]), ("match_iou", 1.0),  # IoU above 1: nothing would ever match
    ("ground_homography", [0] * 9), ("ground_homography", [1, 2, 3, 2, 4, 6, 0, 0, 1]),  # singular
    ("ground_homography", [1e200, 0, 0, 0, 1e200, 0, 0, 0, 1]),  # singular at its scale (OverflowError)
    ("ground_homography", [1e300] * 9),
])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig(**{field: value})


def test_a_homography_is_judged_up_to_scale():
    """Tiny or huge entries of a regular matrix: the determinant of raw entries under- or overflowed."""
    h = (0.02, 0.001, -3.0, 0.0, 0.05, -8.0, 0.0, 0.001, 1.0)
    for scale in (1e-200, 1e-5, 1.0, 1e150):
        TrackerConfig(ground_homography=[scale * v for v in h])


def test_numpy_scalars_are_numbers():
    import numpy as np

    cfg = TrackerConfig(min_hits=np.int64(3), match_iou=np.float32(0.25), class_aware=np.bool_(False))
    assert (cfg.min_hits, cfg.match_iou, cfg.class_aware) == (3, 0.25, False)
    assert type(cfg.min_hits) is int and type(cfg.class_aware) is bool
    with pytest.raises(ConfigError, match="min_hits: expected an integer"):
        TrackerConfig(min_hits=np.float32(2.5))


def test_config_rejects_low_above_high():
    with pytest.raises(ConfigError, match="low_score"):
        TrackerConfig(low_score=0.8, high_score=0.5)


def test_shipped_yaml_is_valid_and_complete(tmp_path):
    path = REPO / "config" / "tracker.yaml"
    cfg = load_config(TrackerConfig, path, allowed_extra=tracker_node_param_names())
    assert cfg == TrackerConfig()  # the shipped file documents the defaults
    node = load_config(TrackerNodeConfig, path, allowed_extra={s.name for s in TrackerConfig.specs()})
    assert node == TrackerNodeConfig()
    text = path.read_text()  # ... every one of them (README: "lists them all")
    missing = [s.name for s in TrackerConfig.specs() + TrackerNodeConfig.specs()
               if f"    {s.name}:" not in text]
    assert not missing, missing


def test_yaml_typo_is_rejected(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("/**:\n  ros__parameters:\n    match_iuo: 0.3\n")
    with pytest.raises(ConfigError, match="match_iuo"):
        load_config(TrackerConfig, f)


def _multi_node_file(tmp_path, tracker_key="tracker"):
    f = tmp_path / "params.yaml"
    f.write_text(f"/**:\n  ros__parameters:\n    use_sim_time: true\n    match_iou: 0.25\n"
                 f"{tracker_key}:\n  ros__parameters:\n    min_hits: 3\n"
                 f"    qos_overrides./tracks.publisher.depth: 5\n"
                 f"/**/detector:\n  ros__parameters:\n    score_threshold: 0.4\n    min_hits: 7\n")
    return f


@pytest.mark.parametrize("key", ["tracker", "/tracker", "/**/tracker"])
def test_yaml_sections_of_other_nodes_are_left_to_them(tmp_path, key):
    # a file shared by several nodes: the detector's section is not the tracker's (its score_threshold
    # was an unknown parameter, its min_hits overrode the tracker's); use_sim_time and qos_overrides
    # are parameters every ROS node accepts
    cfg = load_config(TrackerConfig, _multi_node_file(tmp_path, key),
                      allowed_extra=tracker_node_param_names(), node="/tracker")
    assert (cfg.match_iou, cfg.min_hits) == (0.25, 3)


@pytest.mark.parametrize("key", ["/cam1/tracker", "/*/tracker", "tracker_node"])
def test_yaml_sections_of_a_node_elsewhere_are_not_read(tmp_path, key):
    # rcl gives /tracker neither /cam1/tracker's section nor /*/tracker's (one namespace part): the
    # replay CLI scored with the values of a /cam1/tracker section its /tracker node never had
    cfg = load_config(TrackerConfig, _multi_node_file(tmp_path, key),
                      allowed_extra=tracker_node_param_names(), node="/tracker")
    assert (cfg.match_iou, cfg.min_hits) == (0.25, TrackerConfig().min_hits)


def test_yaml_nested_namespace_form_is_read(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/cam1:\n  tracker:\n    ros__parameters:\n      min_hits: 4\n"
                 "  detector:\n    ros__parameters:\n      min_hits: 9\n")
    assert load_config(TrackerConfig, f, node="/cam1/tracker").min_hits == 4
    with pytest.raises(ConfigError, match=r"no ros__parameters section applies to node '/tracker' "
                                          r"\(sections: cam1/tracker, cam1/detector\)"):
        load_config(TrackerConfig, f, node="/tracker")


def test_yaml_without_a_section_for_the_node_is_refused(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/**/detector:\n  ros__parameters:\n    score_threshold: 0.4\n")
    with pytest.raises(ConfigError, match=r"no ros__parameters section applies to node '/tracker' "
                                          r"\(sections: \*\*/detector\)"):
        load_config(TrackerConfig, f, node="/tracker")


def test_replay_checks_only_the_tracker_nodes_sections(tmp_path):
    from ros2_tracker.cli.replay import _check_tracker_file

    _check_tracker_file(_multi_node_file(tmp_path, "/**/tracker"))  # was: unknown score_threshold
    f = tmp_path / "typo.yaml"
    f.write_text("tracker:\n  ros__parameters:\n    min_hit: 3\n/**/detector:\n  ros__parameters:\n"
                 "    score_threshold: 0.4\n")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) min_hit$"):
        _check_tracker_file(f)


def test_yaml_numbers_read_as_a_nodes_parameter_file_reads_them(tmp_path):
    """rcl reads 1e1 and 5E-1 as doubles; PyYAML's YAML 1.1 schema alone gives strings (refused as 'not a
    number'). A section with nothing under it is empty, not a parameter named after it."""
    f = tmp_path / "t.yaml"
    f.write_text("/**:\n  ros__parameters:\n    max_lost_s: 1e1\n    match_iou: 5E-1\n    min_hits: 3\n")
    cfg = load_config(TrackerConfig, f)
    assert (cfg.max_lost_s, cfg.match_iou, cfg.min_hits) == (10.0, 0.5, 3)
    f.write_text("/**:\n  ros__parameters:\n    note: '1e1'\n")  # quoted: still a string
    with pytest.raises(ConfigError, match="note"):
        load_config(TrackerConfig, f)
    f.write_text("/**:\n  ros__parameters:\n")
    assert load_config(TrackerConfig, f) == TrackerConfig()


def test_imu_parameters_are_checked():
    """use_imu: the core tracker (Tracktor has its own compensation), and imu_to_camera a rotation (a
    mirrored axis would turn the tracks the wrong way)."""
    assert TrackerNodeConfig(use_imu=True).imu_to_camera_matrix()[2].tolist() == [1.0, 0.0, 0.0]
    TrackerNodeConfig(use_imu=True, use_images=True, use_cmc=True)  # the images where the gyro is missing
    with pytest.raises(ConfigError, match="use_imu: needs tracker:=core"):
        TrackerNodeConfig(use_imu=True, use_images=True, tracker="tracktor")
    for bad, why in (([1.0, 0, 0, 0, 1, 0, 0, 0, -1], "not a rotation"), ([2.0, 0, 0, 0, 1, 0, 0, 0, 1],
                     "not a rotation"), ([1.0] * 8, "must be 9 finite numbers"),
                     ([float("nan")] * 9, "must be 9 finite numbers")):
        with pytest.raises(ConfigError, match=f"imu_to_camera: .*{why}"):
            TrackerNodeConfig(imu_to_camera=bad)


def test_depth_parameters_are_checked():
    """use_depth works with either tracker; its valid range must not be empty, its fraction a share."""
    TrackerNodeConfig(use_depth=True, use_images=True, tracker="tracktor")
    TrackerNodeConfig(use_depth=True, depth_min_m=0.3, depth_max_m=6.0)
    with pytest.raises(ConfigError, match=r"depth_min_m: must be below depth_max_m \(5.0 m\), got 5.0 m"):
        TrackerNodeConfig(use_depth=True, depth_min_m=5.0, depth_max_m=5.0)
    for field, bad in (("depth_box_fraction", 0.0), ("depth_box_fraction", 1.5), ("depth_max_offset_s", -0.1),
                       ("depth_min_m", float("nan"))):
        with pytest.raises(ConfigError, match=field):
            TrackerNodeConfig(**{field: bad})
