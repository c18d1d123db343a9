"""Node-level parameters (topics, QoS, ...) as validated dataclasses, ROS-free.

The tracker node's parameters are :class:`~ros2_tracker.core.tracker.TrackerConfig` plus
:class:`TrackerNodeConfig`; both are read from the same ``config/tracker.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, param

__all__ = ["TrackerNodeConfig", "tracker_node_param_names"]


@dataclass(frozen=True)
class TrackerNodeConfig(ConfigBase):
    """Parameters of ``tracker_node`` beyond the tracker's own."""

    detections_topic: str = param("detections", "Input detections (ros2_tracker/Detection2DArray)",
                                  read_only=True)
    image_topic: str = param("image", "Input images, paired with detections by stamp", read_only=True)
    use_images: bool = param(False, "Subscribe to images (for the annotated image and appearance)",
                             read_only=True)
    image_queue_size: int = param(30, "Images kept while waiting for their detections", low=1,
                                  high=1000, read_only=True)
    publish_markers: bool = param(True, "Publish visualization_msgs/MarkerArray on tracks/markers")
    publish_lost: bool = param(True, "Include lost (coasting) tracks in the published TrackArray")
    publish_tentative: bool = param(False, "Include tentative tracks in the published TrackArray")
    image_qos: str = param("sensor_data", "QoS of image subscriptions", choices=("sensor_data", "reliable"),
                           read_only=True)
    tracks_qos: str = param("reliable", "QoS of the tracks publisher", choices=("sensor_data", "reliable"),
                            read_only=True)
    detections_format: str = param("ros2_tracker", "Message type on detections_topic: ros2_tracker/"
                                   "Detection2DArray or vision_msgs/Detection2DArray (needs vision_msgs "
                                   "installed)", choices=("ros2_tracker", "vision_msgs"), read_only=True)
    max_pending_detections: int = param(10, "With use_images: detection messages kept waiting for their "
                                        "image; beyond this the oldest is tracked without it", low=0,
                                        high=1000, read_only=True)
    image_wait_s: float = param(0.5, "With use_images: longest wait of a detection message for its "
                                "image before it is tracked without it", low=0.0, high=10.0, unit="s",
                                read_only=True)
    marker_scale: float = param(0.01, "Markers: image pixels are drawn on a plane, x = u * scale, "
                                "y = -v * scale", low=1e-6, high=100.0, unit="m/px")


def tracker_node_param_names() -> set[str]:
    """Names of the node-only parameters allowed in a tracker YAML file."""
    return {s.name for s in TrackerNodeConfig.specs()}
