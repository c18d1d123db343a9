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
])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig(**{field: value})


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
