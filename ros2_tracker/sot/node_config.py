"""``sot_node``'s own parameters (QoS, start from tracks, re-acquisition models), ROS-free.

The node's parameters are :class:`~ros2_tracker.sot.factory.SotConfig` (backend),
:class:`~ros2_tracker.sot.follower.FollowerConfig` (state machine, re-acquisition, prediction) and
:class:`SotNodeConfig`, all in ``config/sot.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["SotNodeConfig", "sot_param_names"]


@dataclass(frozen=True)
class SotNodeConfig(ConfigBase):
    """Parameters of ``sot_node`` beyond the backend's and the follower's."""

    image_qos: str = param("sensor_data", "QoS of the image subscription",
                           choices=("sensor_data", "reliable"), read_only=True)
    image_buffer_size: int = param(30, "Recent images kept so that ~/start can name the image its box was "
                                   "drawn on (header.stamp)", low=1, high=1000, read_only=True)
    use_tracks: bool = param(False, "Subscribe to `tracks` (TrackArray) so that ~/start can take a track id",
                             read_only=True)
    detector_model_path: str = param("", "Re-acquisition detector (YOLOX ONNX, e.g. yolox_nano.onnx); "
                                     "empty = wider search only. Needs reid_model_path", read_only=True)
    detector_score_threshold: float = param(0.3, "Re-acquisition detector: minimum score", low=0.0,
                                            high=1.0, read_only=True)
    detector_classes: list[int] = param([0], "Re-acquisition detector: COCO class ids (0 = person)",
                                        read_only=True)
    reid_model_path: str = param("", "Re-ID ONNX model (e.g. osnet_x0_25_msmt17.onnx) comparing candidates "
                                 "with the target's appearance; empty = none", read_only=True)

    def check(self) -> None:
        """The detector stage compares detections by appearance: it needs the re-ID model."""
        if self.detector_model_path and not self.reid_model_path:
            raise ConfigError("detector_model_path: needs reid_model_path as well (detections are compared "
                              "with the target by appearance)")


def sot_param_names() -> set[str]:
    """Every parameter name of ``sot_node`` (for checking ``config/sot.yaml``)."""
    from ros2_tracker.sot.factory import SotConfig
    from ros2_tracker.sot.follower import FollowerConfig

    return {s.name for cls in (SotConfig, FollowerConfig, SotNodeConfig) for s in cls.specs()}
