"""sot_node: follow one chosen target in the images (single-target mode: convert -> follower -> publish).

Services (relative to the node, ``~/``):

- ``~/start`` (``ros2_tracker/srv/StartTarget``): a box (centre x, centre y, width, height [px]) in
  the image whose stamp is ``header.stamp`` (zero: the latest image; one of the last
  ``image_buffer_size`` images otherwise), or ``track_id >= 0``: the box of that track in the latest
  ``tracks`` message (needs ``use_tracks``; the target then keeps the track's id and class). Refused,
  with the reason in ``message``, while a target is followed, before any image, for an unknown stamp
  or track, and for a box outside the image, of zero size or smaller than 4 px inside it. On success
  ``target_id`` is the id the target keeps, re-acquisitions included (box starts count 1, 2, ...).
- ``~/stop`` (``ros2_tracker/srv/StopTarget``): stop following (an empty ``target/array`` with the latest
  image's header says so); refused when no target is followed.

Topics (relative; remap or namespace them in launch):

- sub ``image`` (``sensor_msgs/Image``, QoS ``image_qos``, depth 2: when the follower is slower than
  the camera, frames are skipped rather than queued): every image while a target is followed is one
  :meth:`Follower.step`. An image that cannot be converted, or of another size than the start image,
  is skipped with a warning (each new kind of reason at once, then at most one line per 2 s; the totals
  by kind as the node's last words); the node keeps running (stop and start again after a resolution
  change).
- sub ``tracks`` (``ros2_tracker/TrackArray``; only with ``use_tracks``): the latest one is kept for
  ``~/start`` by track id.
- pub ``target`` (``ros2_tracker/Track``): the target after each image that follows the start, with its
  predicted trajectory. ``state``: tracking -> ``STATE_CONFIRMED``, uncertain -> ``STATE_TENTATIVE``
  (the backend's box, not trusted yet: low confidence or a failed cycle-consistency check), lost ->
  ``STATE_LOST`` (the box is the prediction). ``score`` = the follower's confidence in [0, 1].
- pub ``target/array`` (``ros2_tracker/TrackArray``): the same target with the image's header (a
  ``Track`` has no header; this carries the stamp and frame, as every derived message does).
- pub ``target/image`` (``sensor_msgs/Image`` bgr8): the image with the target drawn; built only while
  it has subscribers.
- pub ``~/timing`` (``std_msgs/String``): JSON ``{"stamp", "stage": "sot", "seconds"}`` per processed
  image (conversion, follower step, building and publishing ``target`` and ``target/array``).

Parameters: every field of :class:`~ros2_tracker.sot.factory.SotConfig`,
:class:`~ros2_tracker.sot.follower.FollowerConfig` and :class:`~ros2_tracker.sot.node_config.SotNodeConfig`
(see ``config/sot.yaml``). An invalid value or an unloadable model at start-up logs the reason and exits
with status 2. Follower parameters can be changed at run time (``cycle_window_frames`` applies from the
next start).

Run: ``python -m ros2_tracker.nodes.sot_node --ros-args --params-file config/sot.yaml -p model_path:=DIR``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from ros2_tracker.core.boxes import xyxy_to_cxcywh
from ros2_tracker.nodes.conversions import stamp_to_ns, track_array_to_arrays, track_list_to_track_array
from ros2_tracker.nodes.params import add_on_set_validator, declare_config
from ros2_tracker.nodes.spinning import SkipCounter, destroy_then_warn, qos_profile, run_node
from ros2_tracker.sot.factory import SotConfig, create_follower
from ros2_tracker.sot.follower import FollowerConfig, FollowResult
from ros2_tracker.sot.node_config import SotNodeConfig

__all__ = ["SotNode", "follow_result_to_track", "main"]

_THROTTLE_S = 2.0


def follow_result_to_track(result: FollowResult, track_cls: type, class_id: int = -1,
                           trajectory_step_s: float = 0.0) -> Any:
    """A ``ros2_tracker/Track`` message of the follower's result (pure conversion, no ROS graph).

    Args:
        result: one :meth:`Follower.step` result.
        track_cls: the ``Track`` message class.
        class_id: the target's class id (-1 when unknown, e.g. started from a box).
        trajectory_step_s: time between trajectory points [s].
    """
    msg = track_cls()
    msg.id = int(result.target_id)
    msg.class_id = int(class_id)
    msg.score = float(result.confidence)
    msg.state = int(result.state.track_state)
    msg.box = [float(v) for v in xyxy_to_cxcywh(result.box_xyxy[None])[0]]
    msg.velocity = [float(v) for v in result.velocity]
    msg.box_variance = [float(v) for v in result.box_variance]
    msg.age = float(result.age_s)
    msg.hits = int(result.hits)
    msg.time_since_update = float(result.time_since_update_s)
    k = len(result.trajectory)
    msg.trajectory_step = float(trajectory_step_s) if k else 0.0
    msg.trajectory = np.asarray(result.trajectory, dtype=np.float32).reshape(-1).tolist()
    msg.trajectory_covariance = np.asarray(result.trajectory_cov, dtype=np.float32).reshape(-1).tolist()
    return msg


class SotNode(Node):
    """The single-target node; see the module docstring for services, topics and parameters.

    Raises:
        ConfigError: a parameter is invalid, or a model cannot be loaded, at start-up.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sot_node", **kwargs)
        self.skips = SkipCounter(_THROTTLE_S)  # images the follower could not step on, by kind
        sot = declare_config(self, SotConfig)
        follower_cfg = declare_config(self, FollowerConfig)
        self._cfg = cfg = declare_config(self, SotNodeConfig)
        self._follower = create_follower(sot, follower_cfg, detector_model_path=cfg.detector_model_path,
                                         detector_score_threshold=cfg.detector_score_threshold,
                                         detector_classes=cfg.detector_classes,
                                         reid_model_path=cfg.reid_model_path)
        add_on_set_validator(self, FollowerConfig, lambda: self._follower.config, self._set_follower_config)
        self._msgs = importlib.import_module("ros2_tracker.msg")
        srvs = importlib.import_module("ros2_tracker.srv")
        self._images: OrderedDict[int, Image] = OrderedDict()
        self._tracks: Any = None
        self._next_id, self._class_id = 1, -1
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._target_pub = self.create_publisher(self._msgs.Track, "target", reliable)
        self._array_pub = self.create_publisher(self._msgs.TrackArray, "target/array", reliable)
        self._image_pub = self.create_publisher(Image, "target/image", 5)
        self._timing_pub = self.create_publisher(String, "~/timing", 100)
        # depth 2: a follower slower than the camera skips frames instead of falling behind
        self.create_subscription(Image, "image", self._on_image, qos_profile(cfg.image_qos, 2))
        if cfg.use_tracks:
            self.create_subscription(self._msgs.TrackArray, "tracks", self._on_tracks, reliable)
        self.create_service(srvs.StartTarget, "~/start", self._on_start)
        self.create_service(srvs.StopTarget, "~/stop", self._on_stop)
        self.get_logger().info(f"single-target mode ({self._follower.name}) on "
                               f"{self.resolve_topic_name('image')}; waiting for ~/start")

    def destroy_node(self) -> None:
        """Say, last, how many images were skipped in all (the throttled lines may have left some out)."""
        skips = getattr(self, "skips", None)
        destroy_then_warn(self, super().destroy_node, skips.last_words("image(s) skipped") if skips else [])

    # ------------------------------------------------------------------------------------ services
    def _on_start(self, request: Any, response: Any) -> Any:
        response.success, response.target_id = False, 0
        if self._follower.active:
            response.message = f"already following target {self._follower.target_id}: call ~/stop first"
            return response
        try:
            image, box, target_id, class_id = self._start_request(request)
            frame = self._to_bgr(image)
            self._follower.start(frame, box, stamp_to_ns(image.header.stamp) * 1e-9, target_id)
        except (ValueError, LookupError) as exc:
            response.message = str(exc)
            self.get_logger().warning(f"~/start refused: {exc}")
            return response
        except Exception as exc:  # a backend runtime failure (OpenCV, ONNX Runtime) must not stop the node
            response.message = f"{self._follower.name} failed to start: {type(exc).__name__}: {exc}"
            self.get_logger().error(f"~/start refused: {response.message}")
            return response
        self._catch_up(stamp_to_ns(image.header.stamp))
        if request.track_id < 0:
            self._next_id += 1
        self._class_id = class_id
        response.success, response.target_id = True, target_id
        response.message = f"following target {target_id} ({self._follower.name})"
        self.get_logger().info(response.message)
        return response

    def _skipped(self, what: str, reason: str, error: bool = False) -> None:
        """Count a skipped image and warn (``error``: log an error) about it: at once for the first of its
        kind of ``reason``, else at most once per ``_THROTTLE_S`` (one line per window hid a second kind)."""
        if self.skips.add(reason, time.monotonic()):
            log = self.get_logger().error if error else self.get_logger().warning
            log(f"{what} ({self.skips.total} so far): {reason}")

    def _catch_up(self, start_ns: int) -> None:
        """Step the follower through the buffered images after the one it started on (a box drawn on an
        older image): the target has moved since, and the next live image may be far from it."""
        for stamp_ns in sorted(s for s in self._images if s > start_ns):
            try:
                self._follower.step(self._to_bgr(self._images[stamp_ns]), stamp_ns * 1e-9)
            except Exception as exc:  # as _on_image: that image is skipped, the target kept
                self._skipped(f"image at stamp {stamp_ns * 1e-9:.6f} skipped while catching up",
                              f"{type(exc).__name__}: {exc}")

    def _start_request(self, request: Any) -> tuple[Image, np.ndarray, int, int]:
        """(image, box xyxy, target id, class id) of a start request; ValueError/LookupError says why not."""
        if request.track_id >= 0:
            return self._track_start(int(request.track_id))
        image = self._image_at(stamp_to_ns(request.header.stamp))
        cx, cy, w, h = request.center_x, request.center_y, request.size_x, request.size_y
        return image, np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), self._next_id, -1

    def _track_start(self, track_id: int) -> tuple[Image, np.ndarray, int, int]:
        if not self._cfg.use_tracks:
            raise ValueError("track_id given, but this node does not subscribe to tracks (use_tracks:=false)")
        if self._tracks is None:
            raise LookupError(f"no TrackArray received yet on {self.resolve_topic_name('tracks')}")
        arrays = track_array_to_arrays(self._tracks)
        rows = np.flatnonzero(arrays.ids == track_id)
        if len(rows) == 0:
            raise LookupError(f"track {track_id} is not in the latest TrackArray (ids: "
                              f"{sorted(arrays.ids.tolist())})")
        ns = stamp_to_ns(self._tracks.header.stamp)
        image = self._images.get(ns) or self._image_at(0)
        return image, arrays.boxes_xyxy[rows[0]].copy(), track_id, int(arrays.classes[rows[0]])

    def _image_at(self, stamp_ns: int) -> Image:
        if not self._images:
            raise LookupError(f"no image received yet on {self.resolve_topic_name('image')}")
        if stamp_ns == 0:
            return next(reversed(self._images.values()))
        image = self._images.get(stamp_ns)
        if image is None:
            stamps = list(self._images)
            raise LookupError(f"no image with stamp {stamp_ns * 1e-9:.6f} s among the last {len(stamps)} "
                              f"({stamps[0] * 1e-9:.6f} .. {stamps[-1] * 1e-9:.6f} s); use a zero stamp for "
                              f"the latest image")
        return image

    def _on_stop(self, request: Any, response: Any) -> Any:
        if not self._follower.active:
            response.success, response.message = False, "not following any target"
            return response
        target = self._follower.target_id
        self._follower.stop()
        if self._images:  # an empty target/array tells listeners that the target is gone
            header = next(reversed(self._images.values())).header
            self._array_pub.publish(track_list_to_track_array([], header, self._msgs))
        response.success, response.message = True, f"stopped following target {target}"
        self.get_logger().info(response.message)
        return response

    # ----------------------------------------------------------------------------------- callbacks
    def _on_tracks(self, msg: Any) -> None:
        self._tracks = msg

    def _on_image(self, msg: Image) -> None:
        self._images[stamp_to_ns(msg.header.stamp)] = msg
        while len(self._images) > self._cfg.image_buffer_size:
            self._images.popitem(last=False)
        if not self._follower.active:
            return
        start = time.perf_counter()
        stamp_s = stamp_to_ns(msg.header.stamp) * 1e-9
        try:
            frame = self._to_bgr(msg)
            result = self._follower.step(frame, stamp_s)
        except ValueError as exc:
            self._skipped(f"image at stamp {stamp_s:.6f} skipped", str(exc))
            return
        except Exception as exc:  # a backend runtime failure (OpenCV, ONNX Runtime) must not stop the node
            self._skipped(f"image at stamp {stamp_s:.6f} skipped",
                          f"{self._follower.name} failed: {type(exc).__name__}: {exc}", error=True)
            return
        if result.event:
            self.get_logger().info(f"target {result.target_id}: {result.event} at stamp {stamp_s:.6f}")
        self._publish(result, msg.header)
        self._timing_pub.publish(String(data=json.dumps(
            {"stamp": stamp_s, "stage": "sot", "seconds": time.perf_counter() - start})))
        if self._image_pub.get_subscription_count() > 0:
            self._publish_image(frame, result, msg.header)

    # ------------------------------------------------------------------------------------- helpers
    def _publish(self, result: FollowResult, header: Any) -> None:
        track = follow_result_to_track(result, self._msgs.Track, self._class_id,
                                       self._follower.config.trajectory_step_s)
        self._target_pub.publish(track)
        self._array_pub.publish(track_list_to_track_array([track], header, self._msgs))

    def _publish_image(self, frame: np.ndarray, result: FollowResult, header: Any) -> None:
        from ros2_tracker.nodes import image_conversions as ic
        from ros2_tracker.viz.draw import draw_tracks

        label = f"{result.target_id} {result.state.value} {result.confidence:.2f}"
        drawn = draw_tracks(frame, [result.target_id], result.box_xyxy[None], [int(result.state.track_state)],
                            result.trajectory[None], result.trajectory_cov[None], [label])
        self._image_pub.publish(ic.bgr_to_image_msg(drawn, Image, "bgr8", header))

    def _to_bgr(self, image: Image) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR; ValueError (ImageConversionError) when it cannot be converted."""
        from ros2_tracker.nodes import image_conversions as ic

        return ic.image_msg_to_bgr(image)

    def _set_follower_config(self, cfg: FollowerConfig) -> None:
        self._follower.config = cfg



def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; returns 2 when a parameter or model is invalid at start-up."""
    return run_node(SotNode, "sot_node", args)


if __name__ == "__main__":
    sys.exit(main())
