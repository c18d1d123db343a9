"""Node-level parameters (topics, QoS, appearance model, ...) as validated dataclasses, ROS-free.

The tracker node's parameters are :class:`~ros2_tracker.core.tracker.TrackerConfig` plus
:class:`TrackerNodeConfig`; both are read from the same ``config/tracker.yaml``. The appearance
embedder's parameters are flat ``reid_*`` fields here (not a ``reid.`` prefix over
:class:`~ros2_tracker.appearance.config.EmbedderConfig`): the node exposes only what a user changes
(model file, its input size, batch size, threads) and keeps OSNet's preprocessing (RGB, ImageNet
mean/std), which the models exported by ``train-reid`` share; :meth:`TrackerNodeConfig.embedder_config`
builds the full ``EmbedderConfig`` from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_tracker.appearance.config import EmbedderConfig
from ros2_tracker.cmc.gyro import BODY_TO_OPTICAL
from ros2_tracker.core.config import ConfigBase, ConfigError, param

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
    sensor_qos: str = param("sensor_data", "QoS of the depth, camera_info and imu subscriptions "
                            "(sensor_data: best effort, matches every driver; reliable: none lost, for a "
                            "replay's reliable publishers, but matches no best-effort one)",
                            choices=("sensor_data", "reliable"), read_only=True)
    tracks_qos: str = param("reliable", "QoS of the tracks publisher", choices=("sensor_data", "reliable"),
                            read_only=True)
    annotated_image_qos: str = param("sensor_data", "QoS of the tracks/image publisher (best effort by "
                                     "default: a large reliable image to a slow viewer stalls DDS)",
                                     choices=("sensor_data", "reliable"), read_only=True)
    detections_format: str = param("ros2_tracker", "Message type on detections_topic: ros2_tracker/"
                                   "Detection2DArray or vision_msgs/Detection2DArray (needs vision_msgs "
                                   "installed)", choices=("ros2_tracker", "vision_msgs"), read_only=True)
    max_pending_detections: int = param(10, "With use_images: detection messages kept waiting for their "
                                        "image; beyond this the oldest is tracked without it", low=0,
                                        high=1000, read_only=True)
    image_wait_s: float = param(0.5, "With use_images: longest wait of a detection message for its "
                                "image before it is tracked without it", low=0.0, high=10.0, unit="s",
                                read_only=True)
    late_tolerance_s: float = param(0.5, "A detection message stamped at most this much before the last "
                                    "tracked one is late (a reordering transport, a detector with several "
                                    "workers): it is dropped and the tracks are kept; further back (a looped "
                                    "bag, a restarted source), or three late messages in a row, the tracker "
                                    "is reset (0: every step back resets)", low=0.0, high=3600.0, unit="s")
    marker_scale: float = param(0.01, "Markers: image pixels are drawn on a plane, x = u * scale, "
                                "y = -v * scale", low=1e-6, high=100.0, unit="m/px")
    marker_lifetime_s: float = param(2.0, "Markers: RViz removes them this long after they came unless a "
                                     "newer message replaced them (the detections stopped); 0: kept until "
                                     "replaced",
                                     low=0.0, high=3600.0, unit="s")
    use_appearance: bool = param(False, "Embed every detection's image crop with the re-ID model "
                                 "(reid_model_path) and associate with appearance; needs use_images",
                                 read_only=True)
    reid_model_path: str = param("", "With use_appearance: re-ID ONNX model (N x 3 x H x W -> N x D), "
                                 "e.g. osnet_x0_25_msmt17.onnx. Changeable at run time: the new model is "
                                 "loaded and checked first, and a failure rejects the change (the old "
                                 "model keeps running)")
    reid_input_size: list[int] = param([256, 128], "With use_appearance: re-ID network input height and "
                                       "width; must match a model that fixes it", unit="px")
    reid_batch_size: int = param(32, "With use_appearance: most crops per inference call", low=1,
                                 high=4096)
    reid_num_threads: int = param(1, "With use_appearance: ONNX Runtime intra-op threads of the re-ID "
                                  "model (0 = all cores)", low=0, high=256)

    use_cmc: bool = param(False, "With use_images and tracker: core: estimate the camera's image motion "
                          "between consecutive images (ECC, cmc_* parameters) and move the tracks by it "
                          "before each update: for a moving camera (Tracktor has its own cmc parameter)",
                          read_only=True)
    use_imu: bool = param(False, "tracker: core: subscribe to imu_topic (sensor_msgs/Imu) and "
                          "camera_info_topic (sensor_msgs/CameraInfo) and turn the tracks with the "
                          "camera: the gyro's rotation between two detection messages moves each track by "
                          "the homography K R^T K^-1 (a robot turning, a pan-tilt head; the camera's "
                          "translation is not in it). With use_cmc too, the image alignment moves the tracks "
                          "on the frames the gyro does not cover", read_only=True)
    imu_topic: str = param("imu", "With use_imu: the gyro's sensor_msgs/Imu (angular_velocity)",
                           read_only=True)
    camera_info_topic: str = param("camera_info", "With use_imu or use_depth: the camera's "
                                   "sensor_msgs/CameraInfo (K, and the size of the image it describes)",
                                   read_only=True)
    camera_rectified: bool = param(
        False, "With use_imu or use_depth: the detections are in the rectified image (image_proc's "
        "image_rect): its camera matrix is camera_info's P (left 3x3) and it has no lens distortion. Off "
        "(detections on image_raw): K, and each box centre is undistorted with camera_info's D (plumb_bob, "
        "rational_polynomial or equidistant) before it is back-projected (use_imu's turn leaves the "
        "distortion out)", read_only=True)
    imu_time_offset_s: float = param(0.0, "With use_imu: added to the IMU's stamps to put them on the "
                                     "camera's clock (a camera whose stamps lag its exposure, an IMU "
                                     "driver's latency; calibration tools such as Kalibr estimate it)",
                                     low=-1.0, high=1.0, unit="s", read_only=True)
    imu_to_camera: list[float] = param(list(BODY_TO_OPTICAL), "With use_imu: the rotation (3x3, row by row) "
                                       "taking vectors in the IMU's frame to the camera's optical frame "
                                       "(x right, y down, z forward). Default: an IMU in the robot's body "
                                       "frame (x forward, y left, z up) and a camera looking forward; "
                                       "[1,0,0,0,1,0,0,0,1] for a camera's own IMU reporting in its optical "
                                       "frame", read_only=True)
    use_depth: bool = param(False, "Subscribe to depth_topic (sensor_msgs/Image, REP 118: 16UC1 millimetres "
                            "or 32FC1 metres) and camera_info_topic, and give every track matched in a frame "
                            "its 3D position in the camera's optical frame (TrackArray positions; markers "
                            "tracks/position): the median depth of the box's central part, back-projected "
                            "through its centre. The depth image must be registered to the detections' image "
                            "(RealSense aligned_depth_to_color, ZED depth_registered); it may be of another "
                            "resolution", read_only=True)
    depth_topic: str = param("depth", "With use_depth: the registered depth image", read_only=True)
    depth_input: str = param("raw", "With use_depth: raw (sub depth_topic, sensor_msgs/Image) or "
                             "compressedDepth (sub depth_topic/compressedDepth, sensor_msgs/CompressedImage "
                             "of image_transport's compressedDepth format, PNG or RVL, as RGB-D robots "
                             "record their depth to save space)", choices=("raw", "compressedDepth"),
                             read_only=True)
    depth_max_offset_s: float = param(0.05, "With use_depth: the depth image nearest in stamp to the "
                                      "detections is used when at most this far from them; else the frame "
                                      "gets no positions (warning)", low=0.0, high=1.0, unit="s")
    depth_box_fraction: float = param(0.5, "With use_depth: the central part of each box whose depth counts, "
                                      "as a share of its width and height (the object fills a box's middle, "
                                      "its edges show the background)", low=0.05, high=1.0)
    depth_min_m: float = param(0.1, "With use_depth: nearer depths are not valid (sensor noise)", low=0.0,
                               high=100.0, unit="m")
    depth_velocity_window_s: float = param(0.5, "With use_depth: each track's velocity along the camera's "
                                           "axis is the least-squares slope of its measured depths over this "
                                           "span of past frames (3 depths at least; TrackArray "
                                           "position_velocities; markers tracks/position_velocity)", low=0.05,
                                           high=10.0, unit="s", read_only=True)
    depth_max_m: float = param(50.0, "With use_depth: farther depths are not valid (beyond the sensor's "
                               "range)", low=0.01, high=10000.0, unit="m")
    tracker: str = param("core", "core: tracking-by-detection of the detections (TrackerConfig); tracktor: a "
                         "detector's regression head tracks on each image, the detections only start tracks "
                         "(parameters of config/tracktor.yaml; needs use_images)",
                         choices=("core", "tracktor"), read_only=True)

    def check(self) -> None:
        """``use_appearance`` needs ``use_images`` and a model; ``reid_*`` must make a valid embedder."""
        if self.tracker == "tracktor" and not self.use_images:
            raise ConfigError("tracker: tracktor needs use_images:=true (it regresses boxes on every image)")
        if self.use_appearance and not self.use_images:
            raise ConfigError("use_appearance: needs use_images:=true (the appearance embeddings are "
                              "computed from the images paired with the detections)")
        if self.use_cmc and (not self.use_images or self.tracker != "core"):
            raise ConfigError("use_cmc: needs use_images:=true and tracker:=core (the motion is estimated "
                              "from the images; Tracktor compensates with its own cmc parameter)")
        if self.use_imu and self.tracker != "core":
            raise ConfigError("use_imu: needs tracker:=core (Tracktor compensates with its own cmc "
                              "parameter)")
        self._check_imu_to_camera()
        if self.depth_min_m >= self.depth_max_m:
            raise ConfigError(f"depth_min_m: must be below depth_max_m ({self.depth_max_m} m), got "
                              f"{self.depth_min_m} m")
        if self.use_appearance and not self.reid_model_path:
            raise ConfigError("reid_model_path: must name a re-ID ONNX model when use_appearance is true "
                              "(e.g. osnet_x0_25_msmt17.onnx)")
        self.embedder_config()  # input_size shape and the like, named with the reid_ prefix

    def _check_imu_to_camera(self) -> None:
        """``imu_to_camera`` must be a rotation: nine finite numbers, orthonormal rows, determinant +1."""
        values = list(self.imu_to_camera)
        r = np.asarray(values, dtype=np.float64).reshape(3, 3) if len(values) == 9 else None
        if r is None or not np.isfinite(r).all():
            raise ConfigError(f"imu_to_camera: must be 9 finite numbers (a 3x3 rotation, row by row), got "
                              f"{values}")
        if np.abs(r @ r.T - np.eye(3)).max() > 1e-3 or np.linalg.det(r) < 0:
            raise ConfigError(f"imu_to_camera: {values} is not a rotation (orthonormal rows, determinant +1; "
                              f"a mirrored axis would turn the tracks the wrong way)")

    def imu_to_camera_matrix(self) -> np.ndarray:
        """``imu_to_camera`` as a (3, 3) matrix."""
        return np.asarray(self.imu_to_camera, dtype=np.float64).reshape(3, 3)

    def embedder_config(self) -> EmbedderConfig:
        """The appearance embedder's config from the ``reid_*`` fields (ONNX Runtime, ImageNet RGB).

        Raises:
            ConfigError: a ``reid_*`` value is invalid for the embedder (the message names it).
        """
        try:
            return EmbedderConfig(model_path=self.reid_model_path, input_size=list(self.reid_input_size),
                                  batch_size=self.reid_batch_size, num_threads=self.reid_num_threads)
        except ConfigError as exc:
            raise ConfigError(f"reid_{exc}") from None


def tracker_node_param_names() -> set[str]:
    """Names of the node-only parameters allowed in a tracker YAML file."""
    return {s.name for s in TrackerNodeConfig.specs()}
