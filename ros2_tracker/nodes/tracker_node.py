"""tracker_node: detections in, tracks out (thin: convert -> core tracker -> convert -> publish).

Topics (relative; remap or namespace them in launch):

- sub ``detections`` (``ros2_tracker/Detection2DArray``, or ``vision_msgs/Detection2DArray`` with
  ``detections_format:=vision_msgs``; reliable, depth 100). Every message, empty ones included,
  runs one :meth:`Tracker.update`, so lost tracks age even in frames without detections. A node that
  falls behind by more than the queue loses the oldest messages: it counts them from the publishers'
  sequence numbers and says so (a throttled warning).
- sub ``image`` (``sensor_msgs/Image``; only with ``use_images``; QoS ``image_qos``). Images are
  paired with detection messages by exact ``header.stamp`` (integer nanoseconds). A detection
  message waits for its image at most ``image_wait_s`` and behind at most
  ``max_pending_detections`` others, and no longer once a newer image has arrived (images come in
  order, so its own was dropped); then it is tracked without image. Without ``use_images`` nothing
  waits.
- pub ``tracks`` (``ros2_tracker/TrackArray``, QoS ``tracks_qos``): confirmed tracks, plus lost and
  tentative ones per ``publish_lost`` / ``publish_tentative``, each with its predicted trajectory
  (``trajectory_horizon_s`` / ``trajectory_step_s``), as parallel arrays (one entry per track; see
  ``msg/TrackArray.msg``; ``class_names`` holds the names of vision_msgs classes given by name, which
  get ids -2, -3, ... so they are never mixed; empty otherwise). Header = the detections' header.
- pub ``tracks/markers`` (``visualization_msgs/MarkerArray``): see :mod:`ros2_tracker.nodes.markers`;
  built only with ``publish_markers`` and while someone subscribes (they cost more than the tracks).
- pub ``tracks/image`` (``sensor_msgs/Image`` bgr8): the paired image with the tracks drawn; built
  only while it has subscribers.
- pub ``~/timing`` (``std_msgs/String``): JSON ``{"stamp", "stage": "tracker", "seconds"}`` per
  detection message; ``seconds`` covers conversion, tracker update, trajectories, building and
  publishing the TrackArray (markers and the image come after it and are not counted). With
  ``use_appearance``, each frame embedded with its image also gets a ``"stage": "embed"`` message
  (image conversion, crops and re-ID inference), published before the ``"tracker"`` one; the
  ``"tracker"`` seconds then exclude it, so the stages add up. With ``use_cmc`` a ``"stage": "cmc"``
  message likewise carries the camera-motion estimate, with ``use_imu`` a ``"stage": "imu"`` one the
  frames the gyro turned the tracks (those get no ``"cmc"`` one), and with ``use_depth`` a
  ``"stage": "depth"`` one the 3D positions (decoding the depth image included).

Camera-motion compensation (``use_cmc``, needs ``use_images``, core tracker): before each update the image
motion since the previous image is estimated (ECC, ``cmc_*`` parameters of ``CmcConfig``; the detections'
pixels are left out) and the tracks, lost ones included, are moved by it, so a moving camera does not
outrun the predicted boxes. A frame without a usable image is tracked without it, and the next image starts
the estimate over.

The camera's rotation from a gyro (``use_imu``, core tracker): sub ``imu`` (``sensor_msgs/Imu``, QoS
``sensor_qos``: best effort by default, any publisher) and ``camera_info`` (``sensor_msgs/CameraInfo``, the
same QoS; the last calibrated K is used). Before each
update the gyro's angular velocities between the last tracked stamp and this one are integrated (linear
between samples) and the tracks are moved by the homography ``K R^T K^-1`` of that rotation (of undistorted
pixels: with camera_info's D each centre is undistorted, turned and taken back through the lens,
:meth:`~ros2_tracker.io.camera_model.CameraModel.warp_affines`), each at its own
place (:mod:`ros2_tracker.cmc.gyro`; a lost track the turn puts 90 degrees or more off the camera's axis is
dropped); ``imu_to_camera`` turns the IMU's axes into the camera's optical frame. No calibrated camera_info
yet, or an instant of the interval farther than 0.1 s from every IMU sample: the frame is tracked without
it (throttled warning; the last words count those frames), or, with ``use_cmc`` as well, with the image
alignment (then without a warning; after a frame the gyro turned, the alignment starts over from its
image): the gyro where it is, the images otherwise.

3D positions from a registered depth image (``use_depth``, either tracker): sub ``depth``
(``sensor_msgs/Image``, REP 118 ``16UC1`` millimetres or ``32FC1`` metres), or with
``depth_input:=compressedDepth`` ``depth/compressedDepth`` (``sensor_msgs/CompressedImage``, image_transport's
compressedDepth, PNG or RVL; under the remapped ``depth``, as image_transport does), QoS ``sensor_qos`` (best
effort by default; a replay's are reliable: none lost), the last
``_DEPTH_DEPTH`` kept undecoded, and ``camera_info`` (the last calibrated K, and the width and height of the
image it describes: a depth image of another resolution is scaled to it). For each detection message the depth
image nearest in stamp is used when within ``depth_max_offset_s``; every published track matched in this frame
gets the median of the valid depths (within ``depth_min_m`` .. ``depth_max_m``) on a 16 x 16 grid over its
box's central ``depth_box_fraction``, back-projected through the box centre
(:func:`ros2_tracker.core.depth.box_positions`): ``TrackArray.positions`` (x, y, z) [m] in the camera's
optical frame, NaN for lost tracks (their box is a prediction, where the depth may be an occluder's) and where
too few depths are valid; markers ``tracks/position`` (spheres) and the annotated image's labels (``id  z m``)
show them. Where each is going: ``TrackArray.position_velocities`` (vx, vy, vz) [m/s], the filtered image
velocity times the depth across the image and the least-squares slope of the track's measured depths over the
last ``depth_velocity_window_s`` along the camera's axis (:func:`ros2_tracker.core.depth.position_velocities`;
NaN without a position or with fewer than 3 depths in that span); markers ``tracks/position_velocity`` (an
arrow to where the track will be in 1 s). No depth image near enough, no calibrated camera_info yet, or an
undecodable depth image: that frame's positions are NaN and a warning says why (the last words count them).

Appearance (``use_appearance``, needs ``use_images``): every detection message that comes with its
image has all its boxes, of any class, cropped and embedded by the re-ID model
(``reid_model_path``, ONNX Runtime, ``reid_batch_size`` crops per inference call) in one call, and
the embeddings go to :meth:`Tracker.update` as ``features``. A box without a usable crop (outside the
image, thinner than 2 px inside it) gets no appearance, the others do. A frame without its image,
with an image that cannot be converted, or whose embedding fails is tracked without appearance
(throttled warning); the node keeps running. ``reid_model_path`` (and ``reid_input_size``,
``reid_batch_size``, ``reid_num_threads``) can be changed at run time: the new model is loaded and
checked (one crop through it) before the change is accepted; a failure rejects the change with the
reason and the old model keeps running. Loading blocks tracking for its duration (well under a
second for OSNet x0.25). A new model with another embedding size resets the tracker (warning): the
tracks' appearance memories cannot be compared with its embeddings (ids keep counting up).

Tracktor (``tracker:=tracktor``, needs ``use_images``): each detection message with its image goes through
:class:`~ros2_tracker.regression.tracktor.Tracktor` instead of the core tracker: the tracks' boxes are
regressed by the detector's heads on the image (``regressor_model_path``, e.g. the D2Go Faster R-CNN), the
message's detections of class ``class_id`` are refined by the same heads and only start tracks; with
``use_appearance`` the re-ID model re-identifies inactive tracks. Its parameters are those of
``config/tracktor.yaml`` (pass it as a second ``--params-file``); trajectories use the core's
``trajectory_*`` parameters. A frame without a usable image is skipped (warning).

Parameters: every field of :class:`~ros2_tracker.core.tracker.TrackerConfig` and
:class:`~ros2_tracker.nodes.node_config.TrackerNodeConfig`, declared with ranges (see
:mod:`ros2_tracker.nodes.params`). An invalid value at start-up logs the parameter and its range and
exits with status 2; run-time changes are validated the same way, and accepted tracker parameters
take effect at the next update without losing tracks (:meth:`Tracker.set_config`).

Bad input never stops the node: invalid boxes (NaN, inf, size <= 0) are dropped and counted, stamps
a little behind the last tracked ones (at most ``late_tolerance_s``: a reordering transport, a detector
with several workers) are dropped as late and the tracks kept, stamps further back (a looped bag, a
restarted source) or three late messages in a row reset the tracker, undecodable images are skipped (and
the frame tracked without appearance); each case logs a throttled warning (each new kind of bad image at
once), and the node's last words give the totals.

Run: ``python -m ros2_tracker.nodes.tracker_node --ros-args --params-file config/tracker.yaml``.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import json
import sys
import time
import warnings
from typing import Any, NamedTuple

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from ros2_tracker.appearance import Embedder, EmbedderConfig, create_embedder, valid_rows
from ros2_tracker.appearance.config import reid_parameter_error
from ros2_tracker.cmc.gyro import GyroBuffer, camera_rotation, rotation_homography
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.depth import DepthHistory, box_positions, position_velocities
from ros2_tracker.core.track import TrackSet, Trajectories
from ros2_tracker.core.tracker import StampError, Tracker, TrackerConfig, strongest
from ros2_tracker.io.calibration import orient_homography
from ros2_tracker.nodes.conversions import (
    DetectionArrays,
    SequenceGaps,
    detections_to_arrays,
    published_tracks,
    stamp_to_ns,
    tracks_to_msg,
)
from ros2_tracker.nodes.inputs import ScoreRangeWatch, StampOrder, StampPairer
from ros2_tracker.nodes.markers import tracks_to_markers
from ros2_tracker.nodes.node_config import TrackerNodeConfig
from ros2_tracker.nodes.params import add_on_set_validator, declare_config, plain_value
from ros2_tracker.nodes.spinning import SkipCounter, destroy_then_warn, qos_profile, run_node, transport_topic

__all__ = ["TrackerNode", "main"]

_THROTTLE_S = 2.0
_ORIENT_DETECTIONS = 20  # foot points that decide a ground_homography's sign
_TRACKS_DEPTH = 100  # reliable tracks: a subscriber that missed some is repaired from this history
_DETECTIONS_DEPTH = 100  # detection messages queued for the tracker; beyond, the oldest are lost (counted)
_IMU_DEPTH = 1000  # IMU samples queued (a 400 Hz gyro while one heavy frame is tracked)
_IMU_HOLD_S = 0.1  # an instant farther than this from every IMU sample has no rate: no turn for that frame
_DEPTH_DEPTH = 15  # depth images kept for the detections to come (0.5 s at 30 Hz: a detector's latency)
_JUMP_S = 60.0  # a step forward in stamps at least this long (or max_lost_s, reid_max_age_s) resets


class _Where(NamedTuple):
    """``use_depth``: the published tracks' (N, 3) positions [m] and velocities [m/s] (NaN rows: unknown)."""

    positions: np.ndarray
    velocities: np.ndarray


class TrackerNode(Node):
    """The tracker node; see the module docstring for topics and parameters.

    Raises:
        ConfigError: a parameter is invalid at start-up (the message names it and its range).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("tracker_node", **kwargs)
        # warned-about problems by kind: each throttled warning says how many so far, shutdown the totals
        self._problems: collections.Counter[str] = collections.Counter()
        self._image_skips = SkipCounter(_THROTTLE_S)  # images that could not be used, by kind of reason
        tracker_cfg = declare_config(self, TrackerConfig)
        self._predictor = _motion_predictor(tracker_cfg, self.get_logger())
        self._tracker = Tracker(tracker_cfg, predictor=self._predictor)
        self._homography_checked = False  # ground_homography's sign checked (_orient_homography)
        self._orient_boxes: list[np.ndarray] = []  # detections seen while it is not yet
        self._cfg = declare_config(self, TrackerNodeConfig)
        self._tracktor = _create_tracktor(self) if self._cfg.tracker == "tracktor" else None
        self._stamp_order = StampOrder(_nanoseconds(self._cfg.late_tolerance_s),
                                       jump_ns=_jump_ns(tracker_cfg))
        self._score_watch = ScoreRangeWatch()
        self._aligner = _create_aligner(self) if self._cfg.use_cmc else None
        self._embedder: Embedder | None = None
        self._staged: tuple[EmbedderConfig, Embedder] | None = None  # checked, not yet swapped in
        self._adopted_input_size: list[int] | None = None  # the staged model's crop size, taken with it
        self._class_ids: dict[str, int] = {}  # vision_msgs class names -> ids (-2, -3, ...)
        if self._cfg.use_appearance:
            self._embedder = _load_embedder(self._cfg.embedder_config())
            self.get_logger().info(f"appearance: {_describe(self._embedder, self._cfg.embedder_config())}")
        # rclpy calls the newest on-set callback first: this one (which loads a model) runs after
        # the cheap dataclass validators registered below have accepted the change
        self.add_on_set_parameters_callback(self._check_new_embedder)
        add_on_set_validator(self, TrackerConfig, lambda: self._tracker.config, self._set_tracker_config,
                             check=self._check_tracker_config)
        add_on_set_validator(self, TrackerNodeConfig, lambda: self._cfg, self._set_node_config)
        self._msgs = importlib.import_module("ros2_tracker.msg")
        self._markers_shown = False  # the last MarkerArray drew something (publish_markers off: clear once)
        cfg = self._cfg
        self._tracks_pub = self.create_publisher(self._msgs.TrackArray, "tracks",
                                                 qos_profile(cfg.tracks_qos, _TRACKS_DEPTH))
        self._markers_pub = self.create_publisher(MarkerArray, "tracks/markers", 10)
        self._image_pub = self.create_publisher(Image, "tracks/image",
                                                qos_profile(cfg.annotated_image_qos, 5))
        self._timing_pub = self.create_publisher(String, "~/timing", 100)
        self._gaps = SequenceGaps()  # detection messages lost before the callback (a full queue)
        self.create_subscription(_detections_type(cfg.detections_format), cfg.detections_topic,
                                 self._on_detections, QoSProfile(depth=_DETECTIONS_DEPTH,
                                                                 reliability=ReliabilityPolicy.RELIABLE))
        self._pairer: StampPairer | None = None
        if cfg.use_images:
            self._pairer = StampPairer(cfg.image_queue_size, cfg.max_pending_detections, cfg.image_wait_s,
                                       self._stamp_order.tolerance_ns)
            self.create_subscription(Image, cfg.image_topic, self._on_image,
                                     qos_profile(cfg.image_qos, cfg.image_queue_size))
            # wall time, as image_wait_s is measured: a ROS-time timer stops with /clock (use_sim_time at
            # the end of a bag) and would keep the last detections waiting for images for ever
            self.create_timer(max(0.01, min(0.1, cfg.image_wait_s / 2)), self._on_wait_timer,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._gyro: GyroBuffer | None = None  # use_imu: the recent angular velocities
        # the last valid camera_info's model (io.camera_model.CameraModel): matrix, lens, image size
        self._camera: Any = None
        self._info_sub = None
        if cfg.use_imu or cfg.use_depth:
            self._info_sub = self.create_subscription(CameraInfo, cfg.camera_info_topic, self._on_camera_info,
                                                      qos_profile(cfg.sensor_qos, 5))
        # use_depth: the recent depth images, (stamp [ns], message)
        self._depth_images: collections.deque[tuple[int, Image | CompressedImage]] | None = None
        self._depth_skips = SkipCounter(_THROTTLE_S)  # depth images that could not be used, by kind of reason
        self._depth_history: DepthHistory | None = None  # use_depth: each track's recent depths
        if cfg.use_depth:
            self._depth_history = DepthHistory(cfg.depth_velocity_window_s)
            self._depth_images = collections.deque(maxlen=_DEPTH_DEPTH)
            compressed = cfg.depth_input == "compressedDepth"
            # a remap of depth (the launch files' depth_topic) moves depth/compressedDepth with it
            depth_topic = transport_topic(self, cfg.depth_topic, "compressedDepth") if compressed \
                else cfg.depth_topic
            self._depth_sub = self.create_subscription(CompressedImage if compressed else Image, depth_topic,
                                                       self._on_depth,
                                                       qos_profile(cfg.sensor_qos, _DEPTH_DEPTH))
            self.get_logger().info(f"3D positions from the depth images on "
                                   f"{self.resolve_topic_name(depth_topic)}, intrinsics "
                                   f"{self.resolve_topic_name(cfg.camera_info_topic)}")
        if cfg.use_imu:
            self._gyro = GyroBuffer(hold_s=_IMU_HOLD_S)
            self._imu_to_camera = cfg.imu_to_camera_matrix()
            # sensor_qos's best effort matches IMU and camera drivers of either reliability
            self._imu_sub = self.create_subscription(Imu, cfg.imu_topic, self._on_imu,
                                                     qos_profile(cfg.sensor_qos, _IMU_DEPTH))
            self.get_logger().info(f"turning the tracks with the camera: gyro "
                                   f"{self.resolve_topic_name(cfg.imu_topic)}, intrinsics "
                                   f"{self.resolve_topic_name(cfg.camera_info_topic)}")
        self.get_logger().info(f"tracking {self.resolve_topic_name(cfg.detections_topic)}"
                               + (f" with images from {self.resolve_topic_name(cfg.image_topic)}"
                                  if cfg.use_images else ""))

    def destroy_node(self) -> None:
        """Say, last, how many detection messages never reached the tracker (the throttled lines during
        the run may not have shown the last of them). Also called on a node whose start failed half-way."""
        lines = []
        gaps = getattr(self, "_gaps", None)
        if gaps is not None and gaps.lost:
            lines.append(f"{gaps.lost} detection message(s) in all never reached the tracker")
        problems = getattr(self, "_problems", None)
        if problems:  # the throttled lines may have left some out
            lines.append("in all: " + ", ".join(f"{n} {what}" for what, n in problems.items()))
        image_skips = getattr(self, "_image_skips", None)
        if image_skips is not None:
            lines += image_skips.last_words("unusable image(s)")
        depth_skips = getattr(self, "_depth_skips", None)
        if depth_skips is not None:
            lines += depth_skips.last_words("unusable depth image(s)")
        destroy_then_warn(self, super().destroy_node, lines)

    def _count(self, problem: str) -> int:
        """Count one more ``problem`` (e.g. ``"tracker reset(s)"``); returns how many so far."""
        self._problems[problem] += 1
        return self._problems[problem]

    # ------------------------------------------------------------------ callbacks
    def _on_detections(self, msg: Any, info: Any) -> None:
        missed = self._gaps.add(info) and self._gaps.due(time.monotonic(), _THROTTLE_S)
        if missed:  # every loss since the last line, at most one line per _THROTTLE_S (total at shutdown)
            self.get_logger().warning(
                f"{missed} detection message(s) never reached the tracker ({self._gaps.lost} in all): it "
                f"fell behind its queue of {_DETECTIONS_DEPTH} (slow subscribers to tracks/image or markers, "
                "a heavy re-ID model, too many detections?)")
        if self._pairer is None:
            self._process(msg, None)
            return
        for det, image in self._pairer.add_detections(stamp_to_ns(msg.header.stamp), msg, time.monotonic()):
            self._process(det, image)

    def _on_image(self, msg: Image) -> None:
        for det, image in self._pairer.add_image(stamp_to_ns(msg.header.stamp), msg, time.monotonic()):
            self._process(det, image)

    def _on_imu(self, msg: Imu) -> None:
        w = msg.angular_velocity
        stamp_s = stamp_to_ns(msg.header.stamp) * 1e-9 + self._cfg.imu_time_offset_s  # on the camera's clock
        if not self._gyro.add(stamp_s, (w.x, w.y, w.z)):
            n = self._count("IMU sample(s) dropped")
            self.get_logger().warning(f"IMU sample at stamp {stamp_s:.6f} dropped ({n} so far): not finite, "
                                      "or not after the last one", throttle_duration_sec=_THROTTLE_S)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        from ros2_tracker.io.camera_model import camera_model  # OpenCV: imported only when used

        cfg = self._cfg
        roi = msg.roi
        image = {"rectified": cfg.camera_rectified, "size": (int(msg.width), int(msg.height)),
                 "binning": (int(msg.binning_x), int(msg.binning_y)),
                 "roi": (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))}
        try:
            camera = camera_model(msg.k, msg.d, msg.distortion_model, msg.p, **image)
        except ValueError as exc:
            try:  # a lens model not read here: the pinhole alone, said
                camera = camera_model(msg.k, p=msg.p, **image)
            except ValueError:  # no calibrated matrix
                uses = [what for what, on in (("the tracks are not turned with the camera", cfg.use_imu),
                                              ("tracks get no 3D positions", cfg.use_depth)) if on]
                self.get_logger().warning(f"camera_info ignored: {exc}; {' and '.join(uses)} before a "
                                          "calibrated one comes", throttle_duration_sec=_THROTTLE_S)
                return
            self.get_logger().warning(f"camera_info: {exc}: the lens distortion is left out of the 3D "
                                      "positions", throttle_duration_sec=_THROTTLE_S)
        described = camera.describe()
        if self._camera is None or described != self._camera.describe():  # the first, and each change
            self.get_logger().info(f"camera_info: {described}")
        self._camera = camera

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        if not self._depth_images:  # the first one (none is ever taken out): said once, they do arrive
            kind = (f"{msg.width} x {msg.height} {msg.encoding}" if isinstance(msg, Image)
                    else f"format '{msg.format}'")
            self.get_logger().info(f"first depth image: {kind}, stamp "
                                   f"{stamp_to_ns(msg.header.stamp) * 1e-9:.6f}")
        self._depth_images.append((stamp_to_ns(msg.header.stamp), msg))  # decoded only when used

    def _follow_camera(self, det: DetectionArrays, image: Image | None,
                       bgr: np.ndarray | None) -> tuple[np.ndarray | None, float | None, float | None]:
        """Move the tracks with the camera before the update: by the gyro (``use_imu``), else by the image
        alignment (``use_cmc``); returns the converted image (or the one given) and the seconds each took
        (None: not used this frame)."""
        imu_s = None
        if self._gyro is not None:
            start = time.perf_counter()
            if self._turn_with_camera(det.stamp_s):
                if self._aligner is not None:  # the next alignment starts from this image
                    bgr = self._restart_alignment(det, image, bgr)
                imu_s = time.perf_counter() - start
        if self._aligner is None or imu_s is not None:
            return bgr, None, imu_s
        bgr, cmc_s = self._compensate_camera_motion(det, image, bgr)
        return bgr, cmc_s, None

    def _turn_with_camera(self, stamp_s: float) -> bool:
        """``use_imu``: move every track by the camera's rotation since the last update (the gyro's, between
        the two stamps, as the homography ``K R^T K^-1``); whether it did. Without a calibrated camera_info
        yet, or without IMU samples over the interval, the tracks stay (warning; with ``use_cmc`` the image
        alignment moves them instead, and says nothing)."""
        last = self._tracker.stamp
        if last is None or stamp_s <= last or not len(self._tracker):
            return False
        fallback = self._aligner is not None
        self._take_pending_camera_info()
        if self._camera is None:
            if fallback:
                return False
            self.get_logger().warning(f"no calibrated camera_info on "
                                      f"{self.resolve_topic_name(self._cfg.camera_info_topic)} yet: tracks "
                                      f"not turned with the camera at stamp {stamp_s:.6f}",
                                      throttle_duration_sec=_THROTTLE_S)
            return False
        newest = self._gyro.newest
        if newest is None or newest < stamp_s:
            self._take_pending_imu()
        rot = self._gyro.rotation(last, stamp_s)
        if rot is None:
            n = self._count("frame(s) without IMU samples")
            if fallback:
                return False
            newest = self._gyro.newest
            seen = "none yet" if newest is None else f"the newest is stamped {newest:.6f}"
            self.get_logger().warning(f"no IMU samples cover the stamps {last:.6f} to {stamp_s:.6f} ({n} so "
                                      f"far; {seen}: is the IMU on another clock, or imu_time_offset_s "
                                      "wrong?): tracks not turned with the camera",
                                      throttle_duration_sec=_THROTTLE_S)
            return False
        try:
            # each track's warp through the lens (undistort -> turn -> distort; the pinhole's without D)
            gone = self._tracker.apply_camera_motion(rotation_homography(
                self._camera.matrix, camera_rotation(rot, self._imu_to_camera)), self._camera.warp_affines)
        except ValueError as exc:  # areas scaled a million-fold: no camera turns so between two frames
            self.get_logger().warning(f"the camera's rotation at stamp {stamp_s:.6f} not applied: {exc}",
                                      throttle_duration_sec=_THROTTLE_S)
            return False
        if gone:  # lost tracks coasting far outside the image, now 90 degrees or more off the axis
            self._count("track(s) turned out of the camera's reach")
        return True

    def _take_pending_imu(self) -> None:
        """Take the IMU samples the middleware already holds. The executor takes one message per subscription
        each time it wakes, so after a backlog (a slow frame, a loaded CPU) a detection message can be
        handled before the gyro samples up to its stamp, which came first."""
        _take_pending(self._imu_sub, self._on_imu, _IMU_DEPTH)

    def _take_pending_camera_info(self) -> None:
        """Take the camera_info messages already there (as :meth:`_take_pending_imu`): the first came with the
        first frame's depth image or gyro samples, and the executor may hand over the detections first."""
        _take_pending(self._info_sub, self._on_camera_info, 5)

    # ------------------------------------------------------------------ depth
    def _positions(self, tracks: TrackSet, stamp_ns: int) -> tuple[_Where | None, float | None]:
        """``use_depth``: the (N, 3) positions [m] of the published tracks in the camera's optical frame (NaN
        rows for tracks not matched in this frame, and for all when no depth image or camera_info fits), their
        (N, 3) velocities [m/s] (NaN rows where the position or the depth rate is unknown) and the seconds
        spent; (None, None) without ``use_depth``."""
        if self._depth_images is None or self._depth_history is None:
            return None, None
        start = time.perf_counter()
        out = np.full((len(tracks), 3), np.nan)
        observed = tracks.time_since_update_s == 0  # a lost track's box is a prediction
        centres = velocities = None  # the boxes' centres and their velocities without the lens's distortion
        if observed.any():
            depth = self._depth_at(stamp_ns)
            if depth is not None:
                cfg = self._cfg
                if self._camera.distorted:
                    boxes = tracks.boxes_xyxy
                    centres, velocities = self._camera.undistort_motion(0.5 * (boxes[:, :2] + boxes[:, 2:]),
                                                                        tracks.velocities[:, :2])
                width, height = self._camera.size
                scale = (depth.shape[1] / width if width else 1.0, depth.shape[0] / height if height else 1.0)
                out[observed] = box_positions(depth, tracks.boxes_xyxy[observed], self._camera.matrix,
                                              fraction=cfg.depth_box_fraction, min_m=cfg.depth_min_m,
                                              max_m=cfg.depth_max_m, depth_scale=scale,
                                              centres=None if centres is None else centres[observed])
        rates = self._depth_history.rates(tracks.ids, out[:, 2], stamp_ns * 1e-9)
        moving = np.full((len(tracks), 3), np.nan)
        if self._camera is not None:
            moving = position_velocities(out, tracks.boxes_xyxy, tracks.velocities, rates,
                                         self._camera.matrix, centres=centres, centre_velocities=velocities)
        return _Where(out, moving), time.perf_counter() - start

    def _depth_at(self, stamp_ns: int) -> np.ndarray | None:
        """The depth image [m] nearest in stamp to ``stamp_ns``, when within ``depth_max_offset_s`` and a
        calibrated camera_info has come; else None (a throttled warning that says why)."""
        _take_pending(self._depth_sub, self._on_depth, _DEPTH_DEPTH)  # the newest may still be queued
        self._take_pending_camera_info()
        stamp_s = stamp_ns * 1e-9
        if self._camera is None:
            self.get_logger().warning(f"no calibrated camera_info on "
                                      f"{self.resolve_topic_name(self._cfg.camera_info_topic)} yet: no 3D "
                                      f"positions at stamp {stamp_s:.6f}", throttle_duration_sec=_THROTTLE_S)
            return None
        nearest = min(self._depth_images, key=lambda item: abs(item[0] - stamp_ns), default=None)
        if nearest is None or abs(nearest[0] - stamp_ns) > _nanoseconds(self._cfg.depth_max_offset_s):
            n = self._count("frame(s) without a depth image")
            seen = "none yet" if nearest is None else f"the nearest is stamped {nearest[0] * 1e-9:.6f}"
            self.get_logger().warning(f"no depth image within depth_max_offset_s "
                                      f"({self._cfg.depth_max_offset_s} s) of the detections at stamp "
                                      f"{stamp_s:.6f} ({n} so far; {seen}): no 3D positions",
                                      throttle_duration_sec=_THROTTLE_S)
            return None
        from ros2_tracker.nodes import image_conversions as ic  # OpenCV: imported only when used

        try:
            return ic.depth_msg_to_metres(nearest[1])
        except ic.ImageConversionError as exc:
            if self._depth_skips.add(str(exc), time.monotonic()):  # each new kind at once, else throttled
                self.get_logger().warning(f"cannot use the depth image at stamp {nearest[0] * 1e-9:.6f} "
                                          f"({self._depth_skips.total} so far): {exc}: no 3D positions")
            return None

    def _restart_alignment(self, det: DetectionArrays, image: Image | None,
                           bgr: np.ndarray | None) -> np.ndarray | None:
        """``use_imu`` with ``use_cmc``: after a frame the gyro turned, the image alignment starts over
        from this frame's image (the motion up to it is accounted for); returns the converted image."""
        self._aligner.reset()
        if bgr is None and image is not None:
            bgr = self._to_bgr(image, det.stamp_s)
        if bgr is not None:
            self._aligner.estimate(bgr)  # the identity: it only keeps the image as the next reference
        return bgr

    def _on_wait_timer(self) -> None:
        for det, image in self._pairer.release(time.monotonic()):
            self._process(det, image)

    def _detections(self, msg: Any) -> DetectionArrays:
        """The message's valid detections (the invalid ones dropped with a warning), at most
        ``max_detections`` of them."""
        det = detections_to_arrays(msg, self._class_ids)
        if det.invalid:
            self.get_logger().warning(
                f"dropped {det.invalid} of {len(msg.detections)} detections (NaN/inf box or score, or "
                f"width/height <= 0) at stamp {det.stamp_s:.6f}", throttle_duration_sec=_THROTTLE_S)
        return self._cap_detections(det)

    def _process(self, msg: Any, image: Image | None) -> None:
        """One detection message: convert -> (embed) -> update -> publish tracks, timing, markers, image."""
        if not self._in_order(msg):
            return
        if self._tracktor is not None:
            self._process_tracktor(msg, image)
            return
        start = time.perf_counter()
        det = self._detections(msg)
        want_image = image is not None and self._image_pub.get_subscription_count() > 0
        bgr, features, embed_s = None, None, None
        if self._embedder is not None:
            bgr, features, embed_s = self._embed(det, image, want_image)
        bgr, cmc_s, imu_s = self._follow_camera(det, image, bgr)
        self._orient_homography(det)
        live = self._update(det, features)
        tracks, traj = published_tracks(live, self._tracker.predict_trajectories(),
                                        publish_lost=self._cfg.publish_lost,
                                        publish_tentative=self._cfg.publish_tentative)
        where = self._publish_tracks(msg.header, det.stamp_s, tracks, traj, start,
                                     (("embed", embed_s), ("cmc", cmc_s), ("imu", imu_s)))
        self._check_score_scale(det.scores)
        self._publish_markers(tracks, traj, msg.header, where)
        if want_image:  # with the image's own header (a detector may have left its frame_id empty)
            self._publish_image(image, tracks, traj, image.header, bgr, where)

    def _publish_tracks(self, header: Any, stamp_s: float, tracks: TrackSet, traj: Trajectories, start: float,
                        stages: tuple[tuple[str, float | None], ...]) -> _Where | None:
        """Publish the TrackArray (with the tracks' 3D positions and velocities under ``use_depth``) and this
        frame's ``~/timing``: one message per stage of ``stages`` that ran (seconds not None), then ``depth``,
        then ``tracker`` with the time since ``start`` less theirs, so the stages add up. Returns the
        positions and velocities (None without ``use_depth``)."""
        where, depth_s = self._positions(tracks, stamp_to_ns(header.stamp))
        self._tracks_pub.publish(tracks_to_msg(
            tracks, traj, header, self._msgs, class_names=self._class_names(),
            positions=None if where is None else where.positions,
            position_velocities=None if where is None else where.velocities))
        seconds = time.perf_counter() - start
        for stage, stage_s in (*stages, ("depth", depth_s)):
            if stage_s is not None:
                self._timing_pub.publish(String(data=json.dumps(
                    {"stamp": stamp_s, "stage": stage, "seconds": stage_s})))
                seconds -= stage_s
        self._timing_pub.publish(String(data=json.dumps(
            {"stamp": stamp_s, "stage": "tracker", "seconds": seconds})))
        return where

    def _orient_homography(self, det: DetectionArrays) -> None:
        """Turn round a ``ground_homography`` given with the opposite sign (a homography is defined up to
        scale, sign included), by the foot points of the first detections after it was set, as
        ``track --calibration`` does: with the wrong sign every person stands above the horizon, every
        ground distance is infinite and no detection ever matches a track. Decided once
        ``_ORIENT_DETECTIONS`` foot points were seen, and only when nearly all (90 %) are behind the
        camera: a box or two above a correct horizon (a bird, a footbridge) must not flip it."""
        cfg = self._tracker.config
        if self._homography_checked or not cfg.ground_homography or not len(det.scores):
            return
        self._orient_boxes.append(det.boxes_xyxy)
        boxes = np.concatenate(self._orient_boxes)
        if len(boxes) < _ORIENT_DETECTIONS:
            return
        self._homography_checked = True
        self._orient_boxes = []
        values, flipped = orient_homography(cfg.ground_homography, boxes, flip_share=0.9)
        if flipped:
            self.get_logger().warning(
                "ground_homography puts most detections' foot points behind the camera (w < 0): using it "
                "with the opposite sign (the same homography up to scale); give it negated to silence this")
            self._tracker.set_config(dataclasses.replace(cfg, ground_homography=values))

    def _cap_detections(self, det: DetectionArrays) -> DetectionArrays:
        """At most ``max_detections`` detections (the highest-scoring, as the tracker keeps them), taken
        before any embedding."""
        cap = self._tracker.config.max_detections
        if len(det.scores) <= cap:
            return det
        self.get_logger().warning(
            f"{len(det.scores)} detections at stamp {det.stamp_s:.6f}, more than max_detections ({cap}): "
            f"tracking the {cap} highest-scoring (is the detector's non-maximum suppression on?)",
            throttle_duration_sec=_THROTTLE_S)
        rows = strongest(det.scores, cap)
        return det._replace(boxes_xyxy=det.boxes_xyxy[rows], scores=det.scores[rows],
                            classes=det.classes[rows])

    def _in_order(self, msg: Any) -> bool:
        """Apply :class:`StampOrder` to a detection message: False for a late one (dropped, warning); a
        new timeline resets the tracker (or Tracktor) and the camera-motion aligner (warning)."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        order = self._stamp_order
        step_s = order.step_s(stamp_ns)
        verdict = order.check(stamp_ns)
        if verdict == StampOrder.LATE:
            self.get_logger().warning(
                f"detections at stamp {stamp_ns * 1e-9:.6f} arrived {-step_s:.3f} s behind the last "
                f"tracked ones: dropped as late ({order.late} so far; within late_tolerance_s, "
                f"the tracks are kept)", throttle_duration_sec=_THROTTLE_S)
            return False
        if verdict == StampOrder.NEW_TIMELINE:
            n = self._count("tracker reset(s)")
            if step_s < 0:  # (two calls: rclpy throttles each call site on its own)
                self.get_logger().warning(
                    f"time went backwards by {-step_s:.3f} s at stamp {stamp_ns * 1e-9:.6f} (looped bag, "
                    f"restarted source, or publishers on different clocks: use_sim_time?); resetting the "
                    f"tracker ({n} so far)", throttle_duration_sec=_THROTTLE_S)
            else:
                self.get_logger().warning(
                    f"time jumped {step_s:.3f} s ahead at stamp {stamp_ns * 1e-9:.6f}, longer than any track "
                    f"may coast (paused source, or publishers on different clocks: use_sim_time?); "
                    f"resetting the tracker ({n} so far)", throttle_duration_sec=_THROTTLE_S)
            self._tracker.reset()
            if self._tracktor is not None:
                self._tracktor.reset()
            if self._aligner is not None:
                self._aligner.reset()
        return True

    def _compensate_camera_motion(self, det: DetectionArrays, image: Image | None,
                                  bgr: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """``use_cmc``: move the tracks by the image motion since the previous image (ECC; the detections'
        pixels left out); returns the converted image (for the annotated image) and the seconds spent.
        Without a usable image the aligner starts over: the next image gets no motion."""
        start = time.perf_counter()
        if bgr is None and image is not None:
            bgr = self._to_bgr(image, det.stamp_s)
        if bgr is None:
            self._aligner.reset()
            return None, time.perf_counter() - start
        from ros2_tracker.cmc.ecc import CmcWarning

        failures = self._aligner.failures
        with warnings.catch_warnings():  # said in the node's log below, every time (throttled)
            warnings.simplefilter("ignore", CmcWarning)
            warp = self._aligner.estimate(bgr, det.boxes_xyxy)
        if self._aligner.failures > failures:
            self.get_logger().warning(f"camera-motion compensation failed at stamp {det.stamp_s:.6f} "
                                      f"({self._aligner.failures} frames so far): tracks not moved",
                                      throttle_duration_sec=_THROTTLE_S)
        self._tracker.apply_camera_motion(warp)
        return bgr, time.perf_counter() - start

    # ------------------------------------------------------------------ tracktor
    def _process_tracktor(self, msg: Any, image: Image | None) -> None:
        """``tracker: tracktor``: the image through Tracktor (its detections refined by the same heads)."""
        start = time.perf_counter()
        det = self._detections(msg)  # each is refined by the heads
        bgr = self._to_bgr(image, det.stamp_s) if image is not None else None
        if bgr is None:
            self.get_logger().warning(f"no usable image for the detections at stamp {det.stamp_s:.6f}: "
                                      "Tracktor skips the frame", throttle_duration_sec=_THROTTLE_S)
            return
        self._tracktor.embedder = self._embedder  # follows run-time re-ID model changes
        outside, resized = self._tracktor.dropped_detections, self._tracktor.size_changes
        try:
            live = self._step_tracktor(bgr, det)
        except Exception as exc:  # a failing network must not stop the node (torch raises many types)
            self.get_logger().warning(f"Tracktor failed at stamp {det.stamp_s:.6f}: {type(exc).__name__}: "
                                      f"{_one_line(exc)}", throttle_duration_sec=_THROTTLE_S)
            return
        if self._tracktor.size_changes > resized:
            self.get_logger().warning(f"the image size changed to {bgr.shape[1]}x{bgr.shape[0]} at stamp "
                                      f"{det.stamp_s:.6f}: Tracktor restarted its tracks (new ids)")
        if self._tracktor.dropped_detections > outside:
            self.get_logger().warning(
                f"dropped {self._tracktor.dropped_detections - outside} detections with no part inside the "
                f"{bgr.shape[1]}x{bgr.shape[0]} image at stamp {det.stamp_s:.6f}",
                throttle_duration_sec=_THROTTLE_S)
        cfg = self._tracker.config
        tracks, traj = published_tracks(
            live, self._tracktor.predict_trajectories(cfg.trajectory_horizon_s, cfg.trajectory_step_s),
            publish_lost=self._cfg.publish_lost, publish_tentative=self._cfg.publish_tentative)
        where = self._publish_tracks(msg.header, det.stamp_s, tracks, traj, start, ())
        self._publish_markers(tracks, traj, msg.header, where)
        if self._image_pub.get_subscription_count() > 0:
            self._publish_image(image, tracks, traj, image.header, bgr, where)

    def _step_tracktor(self, bgr: np.ndarray, det: DetectionArrays) -> TrackSet:
        keep = det.classes == self._tracktor.config.class_id  # the class the regressor tracks
        boxes, scores = det.boxes_xyxy[keep], det.scores[keep]
        try:
            return self._tracktor.step(bgr, stamp=det.stamp_s, detections_xyxy=boxes, detection_scores=scores)
        except StampError as exc:
            n = self._count("Tracktor reset(s)")
            self.get_logger().warning(f"{exc}: time went backwards; resetting Tracktor ({n} so far)",
                                      throttle_duration_sec=_THROTTLE_S)
            self._tracktor.reset()
            return self._tracktor.step(bgr, stamp=det.stamp_s, detections_xyxy=boxes, detection_scores=scores)

    # ------------------------------------------------------------------ appearance
    def _embed(self, det: DetectionArrays, image: Image | None,
               keep_image: bool) -> tuple[np.ndarray | None, np.ndarray | None, float | None]:
        """Embeddings of this frame's boxes, in one batched call of the re-ID model.

        Returns:
            ``(bgr, features, seconds)``: the converted image (None when not converted), ``(D, E)``
            features (None: track this frame without appearance) and the time spent [s] (None when
            nothing was attempted: no image).
        """
        embedder = self._embedder
        n = len(det.boxes_xyxy)
        if image is None:
            self.get_logger().warning(f"no image for the detections at stamp {det.stamp_s:.6f} (dropped or "
                                      f"late): tracked without appearance", throttle_duration_sec=_THROTTLE_S)
            return None, None, None
        if n == 0 and not keep_image:
            return None, np.zeros((0, embedder.dim), dtype=np.float32), None
        start = time.perf_counter()
        bgr = self._to_bgr(image, det.stamp_s)
        if bgr is None:
            return None, None, time.perf_counter() - start
        try:
            features = embedder.embed(bgr, det.boxes_xyxy) if n else np.zeros((0, embedder.dim), np.float32)
            if features.shape != (n, embedder.dim):
                raise ValueError(f"the embedder returned shape {features.shape}, expected "
                                 f"({n}, {embedder.dim})")
        except Exception as exc:  # a runtime failure must not stop tracking (ORT raises private types)
            self.get_logger().warning(f"appearance embedding failed at stamp {det.stamp_s:.6f} "
                                      f"({embedder.name}): {type(exc).__name__}: {_one_line(exc)}; tracked "
                                      f"without appearance", throttle_duration_sec=_THROTTLE_S)
            return bgr, None, time.perf_counter() - start
        seconds = time.perf_counter() - start
        unusable = n - int(np.count_nonzero(valid_rows(features))) if n else 0
        if unusable:
            self.get_logger().warning(
                f"{unusable} of {n} boxes at stamp {det.stamp_s:.6f} give no usable crop (outside the "
                f"{bgr.shape[1]}x{bgr.shape[0]} image or thinner than "
                f"{self._cfg.embedder_config().min_crop_size:g} px inside it): those detections are "
                f"tracked without appearance", throttle_duration_sec=_THROTTLE_S)
        return bgr, features, seconds

    def _check_new_embedder(self, params: list[Any]) -> Any:
        """On-set callback: load and check the model of a ``reid_*`` change before it is accepted."""
        from rcl_interfaces.msg import SetParametersResult

        names = {s.name for s in TrackerNodeConfig.specs()}
        delta = {p.name: plain_value(p.value) for p in params if p.name in names}
        if not any(k.startswith("reid_") for k in delta):
            return SetParametersResult(successful=True)
        if not self._cfg.use_appearance:  # read at start: a model set now would never be used
            return SetParametersResult(successful=False, reason="reid_*: not used without use_appearance, "
                                       "which is read at start (restart the node with use_appearance:=true)")
        adopted = self._input_size_of_new_model(delta)
        if adopted is not None:
            delta["reid_input_size"] = adopted
        try:
            new = self._cfg.replace(**delta).embedder_config()
        except (ConfigError, TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if new == self._cfg.embedder_config():
            return SetParametersResult(successful=True)
        try:
            embedder = _load_embedder(new)
        except ConfigError as exc:
            current = self._embedder.name
            self.get_logger().warning(f"re-ID model change rejected: {exc}; still using {current}")
            return SetParametersResult(successful=False,
                                       reason=f"{exc}; the current model ({current}) keeps running")
        self._staged = (new, embedder)
        self._adopted_input_size = adopted
        return SetParametersResult(successful=True)

    def _input_size_of_new_model(self, delta: dict[str, Any]) -> list[int] | None:
        """A new ``reid_model_path`` alone, whose model fixes another crop size than ``reid_input_size``
        (OSNet 256 x 128 -> a train-reid export, 128 x 64): that size, which the node then takes (and sets
        its ``reid_input_size`` to), else None. ``ros2 param set`` changes one parameter at a time, so the
        two could not be changed together."""
        from ros2_tracker.appearance.backends.onnx import fixed_input_size

        if "reid_model_path" not in delta or "reid_input_size" in delta:
            return None
        size = fixed_input_size(str(delta["reid_model_path"]))
        return list(size) if size is not None and list(size) != list(self._cfg.reid_input_size) else None

    def _swap_embedder(self, cfg: EmbedderConfig, previous: EmbedderConfig) -> None:
        """Use the model of ``cfg`` (staged by :meth:`_check_new_embedder`) instead of that of ``previous``;
        reset on a new embedding size, forget the tracks' appearance on another model or crop size (the
        embeddings are not comparable); a change of batch size or threads alone keeps them."""
        staged, self._staged = self._staged, None
        if staged is not None and staged[0] == cfg:
            embedder = staged[1]
        else:  # not staged (should not happen): load it now, keep the old one on failure
            try:
                embedder = _load_embedder(cfg)
            except ConfigError as exc:
                self.get_logger().error(f"re-ID model not changed: {exc}; still using {self._embedder.name}")
                return
        old, self._embedder = self._embedder, embedder
        self.get_logger().info(f"appearance: now {_describe(embedder, cfg)} (was {old.name})")
        if embedder.dim != old.dim:
            self.get_logger().warning(
                f"the new re-ID model gives {embedder.dim}-d embeddings, the old one {old.dim}-d: the "
                f"tracks' appearance memories cannot be compared with the new embeddings; resetting the "
                f"tracker (track ids keep counting up)")
            self._tracker.reset()
        elif cfg.model_path == previous.model_path and list(cfg.input_size) == list(previous.input_size):
            return  # the same model on the same crops: the embeddings, and the memories, stay comparable
        else:  # another model: the old memories are not comparable; tracks are kept
            self._tracker.forget_appearance()
        if self._tracktor is not None:  # Tracktor keeps memories of its own
            self._tracktor.forget_appearance()

    # ------------------------------------------------------------------ helpers
    def _update(self, det: DetectionArrays, features: np.ndarray | None = None) -> TrackSet:
        try:
            return self._update_once(det, features)
        except StampError as exc:
            self.get_logger().warning(f"{exc}: time went backwards (looped bag or restarted source?); "
                                      f"resetting the tracker", throttle_duration_sec=_THROTTLE_S)
            self._tracker.reset()
            return self._update_once(det, features)

    def _update_once(self, det: DetectionArrays, features: np.ndarray | None) -> TrackSet:
        if features is not None:
            try:
                return self._tracker.update(det.boxes_xyxy, det.scores, det.classes, stamp=det.stamp_s,
                                            features=features)
            except StampError:
                raise
            except ValueError as exc:  # features rejected (checked before any state changes)
                self.get_logger().warning(f"appearance not used at stamp {det.stamp_s:.6f}: {exc}",
                                          throttle_duration_sec=_THROTTLE_S)
        return self._tracker.update(det.boxes_xyxy, det.scores, det.classes, stamp=det.stamp_s)

    def _to_bgr(self, image: Image, stamp_s: float) -> np.ndarray | None:
        """The image as ``(H, W, 3)`` uint8 BGR, or None (a warning: each new kind of reason at once, then
        throttled) when it cannot be converted."""
        from ros2_tracker.nodes import image_conversions as ic  # OpenCV: imported only when used

        try:
            return ic.image_msg_to_bgr(image)
        except ic.ImageConversionError as exc:
            if self._image_skips.add(str(exc), time.monotonic()):  # each new kind at once, else throttled
                more = ": tracked without appearance" if self._embedder is not None else ""
                self.get_logger().warning(f"cannot use the image at stamp {stamp_s:.6f} "
                                          f"({self._image_skips.total} so far): {exc}{more}")
            return None

    def _check_score_scale(self, scores: np.ndarray) -> None:
        """Warn (once a minute) while detection scores exceed 1 and the thresholds assume [0, 1], or while
        no detection so far could start a track (:class:`ScoreRangeWatch`)."""
        if note := self._score_watch.check(scores, self._tracker.config):
            self.get_logger().warning(f"{note} (ROS parameters of this node)", throttle_duration_sec=60.0)

    def _publish_markers(self, tracks: TrackSet, traj: Trajectories, header: Any,
                         where: _Where | None = None) -> None:
        if self._markers_pub.get_subscription_count() == 0:
            return
        if not self._cfg.publish_markers:
            if not self._markers_shown:
                return
            keep = np.zeros(len(tracks), dtype=bool)  # clear what was drawn, once
            tracks, where = tracks.select(keep), None if where is None else _Where(*(a[keep] for a in where))
        self._markers_pub.publish(tracks_to_markers(tracks, traj if len(tracks) else None, header,
                                                    scale=self._cfg.marker_scale,
                                                    lifetime_s=self._cfg.marker_lifetime_s,
                                                    positions=None if where is None else where.positions,
                                                    position_velocities=None if where is None else
                                                    where.velocities))
        self._markers_shown = len(tracks) > 0

    def _publish_image(self, image: Image, tracks: TrackSet, traj: Trajectories, header: Any,
                       bgr: np.ndarray | None = None, where: _Where | None = None) -> None:
        from ros2_tracker.nodes import image_conversions as ic  # OpenCV: imported only when used
        from ros2_tracker.viz.draw import distance_labels, draw_tracks

        if bgr is None:
            if self._embedder is not None:
                return  # _embed converted it already and warned when that failed
            bgr = self._to_bgr(image, stamp_to_ns(header.stamp) * 1e-9)
            if bgr is None:
                return
        drawn = draw_tracks(bgr, tracks.ids, tracks.boxes_xyxy, tracks.states, traj.centres, traj.covariances,
                            labels=None if where is None else distance_labels(tracks.ids, where.positions,
                                                                              where.velocities))
        self._image_pub.publish(ic.bgr_to_image_msg(drawn, Image, "bgr8", header))

    def _check_tracker_config(self, cfg: TrackerConfig) -> None:
        """What a run-time change must also fit: a learned motion model reaches only its own horizon
        (MotionModelError, a ConfigError, rejects the change instead of failing every later update); with
        ``tracker: tracktor`` only the fields Tracktor's node uses may change (the others did nothing)."""
        if self._tracktor is not None:
            old = self._tracker.config
            unused = [f.name for f in dataclasses.fields(cfg) if f.name not in _USED_WITH_TRACKTOR
                      and getattr(cfg, f.name) != getattr(old, f.name)]
            if unused:
                raise ConfigError(f"{', '.join(unused)}: not used with tracker: tracktor (its parameters are "
                                  "those of config/tracktor.yaml)")
        if self._predictor is not None:
            self._predictor.check_times(cfg.trajectory_horizon_s)

    def _set_tracker_config(self, cfg: TrackerConfig) -> None:
        if cfg.ground_homography != self._tracker.config.ground_homography:
            self._homography_checked = False  # a new homography: its sign is checked on the next detections
            self._orient_boxes = []
        self._tracker.set_config(cfg)
        self._stamp_order.jump_ns = _jump_ns(cfg)

    def _class_names(self) -> dict[int, str] | None:
        """Class id -> the vision_msgs name it stands for (None: no named classes seen)."""
        return {i: name for name, i in self._class_ids.items()} or None

    def _set_parameter_later(self, parameter: Any) -> None:
        """Set ``parameter`` from a one-shot timer: rclpy is still inside this set_parameters call."""
        def once() -> None:
            timer.cancel()
            self.destroy_timer(timer)
            self.set_parameters([parameter])

        timer = self.create_timer(0.0, once)

    def _set_node_config(self, cfg: TrackerNodeConfig) -> None:
        adopted, self._adopted_input_size = self._adopted_input_size, None
        if adopted is not None and list(cfg.reid_input_size) != adopted:
            cfg = cfg.replace(reid_input_size=adopted)  # the new model's crop size (_check_new_embedder)
            self.get_logger().info(f"reid_input_size: {adopted}, the crop size of {cfg.reid_model_path}")
            self._set_parameter_later(Parameter("reid_input_size", value=adopted))
        old, self._cfg = self._cfg, cfg
        self._stamp_order.tolerance_ns = _nanoseconds(cfg.late_tolerance_s)
        if self._pairer is not None:
            self._pairer.tolerance_ns = self._stamp_order.tolerance_ns
        if self._embedder is not None and cfg.embedder_config() != old.embedder_config():
            self._swap_embedder(cfg.embedder_config(), old.embedder_config())


# TrackerConfig fields tracker_node reads with tracker: tracktor (predicted paths, the stamps' jump threshold,
# the detection cap)
_USED_WITH_TRACKTOR = frozenset({"trajectory_horizon_s", "trajectory_step_s", "max_lost_s", "reid_max_age_s",
                                 "max_detections"})


def _jump_ns(cfg: TrackerConfig) -> int:
    """The step forward in stamps that starts a new timeline [ns]: longer than any track may coast
    (``max_lost_s``, ``reid_max_age_s``), and at least ``_JUMP_S``."""
    return _nanoseconds(max(_JUMP_S, cfg.max_lost_s, cfg.reid_max_age_s))


def _nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)


def _motion_predictor(cfg: TrackerConfig, logger: Any) -> Any:
    """The learned trajectory predictor when ``motion_model`` is learned (None = constant velocity).

    Raises:
        ConfigError: a missing or mismatched motion model file (a start-up error naming the parameter).
    """
    if cfg.motion_model != "learned":
        return None
    from ros2_tracker.motion import create_predictor

    predictor = create_predictor(cfg, logger=logger)
    logger.info(f"motion model: learned, {predictor.path} ({predictor.config.cell}, horizon "
                f"{predictor.config.horizon_s:g} s)")
    return predictor


def _create_aligner(node: Node) -> Any:
    """``use_cmc``: the ECC aligner of the core tracker."""
    cmc, aligner = _declare_cmc(node)
    node.get_logger().info(f"camera-motion compensation: ECC {cmc.cmc_motion}")
    return aligner


def _declare_cmc(node: Node, build: bool = True) -> tuple[Any, Any]:
    """The camera-motion parameters (``cmc_*``, declared on ``node`` from ``CmcConfig``) and, when ``build``,
    an ECC aligner made from them (else None)."""
    from ros2_tracker.cmc.ecc import CmcConfig, EccAligner

    cmc = declare_config(node, CmcConfig)
    return cmc, EccAligner(cmc) if build else None


def _create_tracktor(node: Node) -> Any:
    """``tracker: tracktor``: Tracktor with the parameters of config/tracktor.yaml, declared on ``node``.

    Tracktor's own parameters can change at run time; the regressor's and the camera-motion ones are
    read-only (the model is loaded once).

    Raises:
        ConfigError: an invalid parameter, or a model that cannot be loaded (a start-up error).
    """
    from ros2_tracker.regression.config import RegressorConfig
    from ros2_tracker.regression.factory import create_regressor
    from ros2_tracker.regression.tracktor import Tracktor, TracktorConfig

    cfg = declare_config(node, TracktorConfig)
    regressor = create_regressor(declare_config(node, RegressorConfig))
    cmc, aligner = _declare_cmc(node, build=cfg.cmc)  # declared either way: the parameter set is fixed
    tracktor = Tracktor(regressor, cfg, aligner=aligner)

    def set_config(new: TracktorConfig) -> None:
        tracktor.config = new.replace(cmc=cfg.cmc)  # the aligner is made at start-up

    add_on_set_validator(node, TracktorConfig, lambda: tracktor.config, set_config)
    motion = f", CMC {cmc.cmc_motion}" if cfg.cmc else ""
    node.get_logger().info(f"tracker: tracktor, {regressor.name}{motion}")
    return tracktor


def _load_embedder(cfg: EmbedderConfig) -> Embedder:
    """Build and check the embedder (one crop runs through it).

    Raises:
        ConfigError: the model cannot be used; the message names the ``reid_*`` parameter.
    """
    try:
        return create_embedder(cfg)
    except ConfigError as exc:  # EmbedderLoadError: "model_path: <file>: ..." -> "reid_model_path: ..."
        raise reid_parameter_error(exc, (s.name for s in EmbedderConfig.specs()),
                                   f"reid_backend {cfg.backend}") from None


def _describe(embedder: Embedder, cfg: EmbedderConfig) -> str:
    h, w = cfg.input_size
    return (f"{embedder.name}, {embedder.dim}-d embeddings, {h}x{w} crops, batches of {cfg.batch_size}, "
            f"{cfg.num_threads or 'all'} thread(s)")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"




def _take_pending(sub: Any, callback: Any, most: int) -> None:
    """Hand ``callback`` the messages of subscription ``sub`` that the middleware already holds (at most
    ``most``), ahead of the executor (which takes one message per subscription each time it wakes)."""
    for _ in range(most):
        with sub.handle:
            taken = sub.handle.take_message(sub.msg_type, sub.raw)
        if taken is None:
            return
        callback(taken[0])


def _detections_type(fmt: str) -> type:
    if fmt == "vision_msgs":
        try:
            return importlib.import_module("vision_msgs.msg").Detection2DArray
        except ImportError:
            raise ConfigError("detections_format: 'vision_msgs' needs the vision_msgs package, which is "
                              "not installed (use 'ros2_tracker')") from None
    return importlib.import_module("ros2_tracker.msg").Detection2DArray


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; returns 2 when a parameter is invalid at start-up."""
    return run_node(TrackerNode, "tracker_node", args)


if __name__ == "__main__":
    sys.exit(main())
