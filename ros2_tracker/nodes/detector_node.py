"""detector_node: images in, detections out (thin: convert -> YOLOX detector -> convert -> publish).

Topics (relative; remap or namespace them in launch):

- sub ``image`` (``sensor_msgs/Image``) with ``input:=raw`` (default), or ``image/compressed``
  (``sensor_msgs/CompressedImage``, JPEG/PNG) with ``input:=compressed``; QoS ``image_qos``.
- pub ``detections`` (``ros2_tracker/Detection2DArray``, reliable, depth 100): one message per
  image, empty ones included, with the image's header (stamp and frame_id).
- pub ``~/timing`` (``std_msgs/String``): JSON ``{"stamp", "stage": "detector", "seconds"}`` per
  image; ``seconds`` covers decoding the image, the detector, and building and publishing the message.

Parameters: every field of :class:`~ros2_tracker.detection.DetectorConfig` (``model_path``,
``input_size``, ``score_threshold``, ``nms_iou``, ``classes``, ``max_detections``, ``decoded_output``,
``num_threads``) and of :class:`DetectorNodeConfig`. A missing, unreadable or wrong model, or an
invalid value, stops the node at start with the reason and exit status 2. ``score_threshold``,
``nms_iou``, ``classes`` and ``max_detections`` can change at run time.

An image that cannot be converted (unsupported encoding, data size not ``step * height``,
undecodable compressed data) is skipped with a warning (each new kind of reason at once, then at most one
line per 5 s) and counted by kind in the node's last words; the node keeps running.

Run: ``python -m ros2_tracker.nodes.detector_node --ros-args -p model_path:=yolox_nano.onnx``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.detection import DetectorConfig
from ros2_tracker.nodes.conversions import arrays_to_detections, stamp_to_seconds
from ros2_tracker.nodes.image_conversions import ImageConversionError, compressed_msg_to_bgr, image_msg_to_bgr
from ros2_tracker.nodes.params import add_on_set_validator, declare_config
from ros2_tracker.nodes.spinning import SkipCounter, destroy_then_warn, run_node

__all__ = ["DetectorNode", "DetectorNodeConfig", "main"]

_WARN_EVERY_S = 5.0


@dataclass(frozen=True)
class DetectorNodeConfig(ConfigBase):
    """Parameters of ``detector_node`` beyond the detector's own."""

    input: str = param("raw", "Image input: raw (sub image, sensor_msgs/Image) or compressed (sub "
                       "image/compressed, sensor_msgs/CompressedImage)", choices=("raw", "compressed"),
                       read_only=True)
    image_qos: str = param("sensor_data", "QoS of the image subscription (sensor_data: best effort, "
                           "depth 5, drops frames the detector cannot keep up with)",
                           choices=("sensor_data", "reliable"), read_only=True)
    image_topic: str = param("image", "Input image topic (compressed: <image_topic>/compressed)",
                             read_only=True)
    detections_topic: str = param("detections", "Output detections topic", read_only=True)


class DetectorNode(Node):
    """Runs the YOLOX detector on every image (module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("detector_node", **kwargs)
        self.det_cfg = declare_config(self, DetectorConfig)
        self.cfg = declare_config(self, DetectorNodeConfig)
        from ros2_tracker.detection.yolox import YoloxDetector

        self.detector = YoloxDetector(self.det_cfg)  # ModelLoadError (a ConfigError): clear message
        add_on_set_validator(self, DetectorConfig, lambda: self.detector.config, self._reconfigure,
                             check=self.detector.check_config)  # e.g. classes the model does not have
        from ros2_tracker import msg as tracker_msgs

        self._msgs = tracker_msgs
        self._pub = self.create_publisher(tracker_msgs.Detection2DArray, self.cfg.detections_topic,
                                          QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self._timing_pub = self.create_publisher(String, "~/timing", 100)
        qos = qos_profile_sensor_data if self.cfg.image_qos == "sensor_data" else QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE)
        compressed = self.cfg.input == "compressed"
        topic = self.cfg.image_topic.rstrip("/") + "/compressed" if compressed else self.cfg.image_topic
        self.create_subscription(CompressedImage if compressed else Image, topic, self._on_image, qos)
        self._decode = compressed_msg_to_bgr if compressed else image_msg_to_bgr
        self.processed = 0
        self.skips = SkipCounter(_WARN_EVERY_S)  # images skipped, by kind: the warnings and last words
        self.get_logger().info(f"detecting on {self.resolve_topic_name(topic)} with "
                               f"{self.det_cfg.model_path} (input {self.det_cfg.input_size}, classes "
                               f"{self.det_cfg.classes or 'all'})")

    def _reconfigure(self, cfg: DetectorConfig) -> None:
        try:
            self.detector.reconfigure(cfg)
        except ConfigError as exc:
            self.get_logger().error(f"detector parameters not applied: {exc}")

    def destroy_node(self) -> None:
        """Say, last, how many images were skipped, by kind of reason (the throttled lines may have left
        some out). Also called on a node whose start failed half-way."""
        skips = getattr(self, "skips", None)
        destroy_then_warn(self, super().destroy_node, skips.last_words("image(s) skipped") if skips else [])

    def _on_image(self, msg: Any) -> None:
        """One image: decode -> detect -> publish detections (same header) and timing."""
        start = time.perf_counter()
        try:
            det = self.detector.detect(self._decode(msg))
        except (ImageConversionError, ValueError) as exc:
            if self.skips.add(str(exc), time.monotonic()):  # each new kind at once, else one per window
                stamp = stamp_to_seconds(msg.header.stamp)
                self.get_logger().warning(f"skipped an image stamped {stamp:.6f} "
                                          f"({self.skips.total} so far): {exc}")
            return
        self._pub.publish(arrays_to_detections(det.boxes_xyxy, det.scores, det.classes, msg.header,
                                               self._msgs))
        self.processed += 1
        self._timing_pub.publish(String(data=json.dumps({"stamp": stamp_to_seconds(msg.header.stamp),
                                                         "stage": "detector",
                                                         "seconds": time.perf_counter() - start})))


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; returns 2 when a parameter or the model is invalid at start-up."""
    return run_node(DetectorNode, "detector_node", args, fatal="cannot start")  # ModelLoadError too


if __name__ == "__main__":
    sys.exit(main())
