"""replay_node: publish a recorded sequence (MOTChallenge folder, video file or rosbag2 MCAP bag) as topics.

Publishes ``image`` (sensor_msgs/Image, bgr8), ``detections`` (ros2_tracker/Detection2DArray) and, when
``publish_clock``, ``/clock`` (rosgraph_msgs/Clock), plus ``~/timing`` (std_msgs/String JSON, stage
``decode``: time to read and decode one frame). Stamps are deterministic: frame k of a folder or video
gets ``start_stamp + (k - 1) / fps`` (video frame index f - 1 is MOT frame f); a bag's messages are
republished byte for byte, with their recorded stamps, grouped into frames by stamp (a message recorded
up to ``reorder_window_s`` late, e.g. a detector's output after the next image, joins its own frame; a
stamp further back, as in a looped recording, starts a new timeline with a warning). A bag's
``sensor_msgs/Imu`` and ``CameraInfo`` messages (``publish_imu``) go out on ``imu`` and ``camera_info``
with the next frame, ahead of it: they start no frame of their own, and a gyro recorded up to
``reorder_window_s`` past a frame reaches tracker_node's ``use_imu`` before that frame. An RGB-D bag's depth
images (``publish_depth``: the ``sensor_msgs/Image`` topic named ``depth_topic``, else one whose name says
depth, aligned or registered ones first) go out on ``depth`` for tracker_node's ``use_depth``, each ahead of
the frame nearest to it in stamp (not all at once: the tracker keeps only a few); a bag with no such topic
but a ``.../compressedDepth`` one (image_transport's compressedDepth, as robots record depth to save space)
has it republished on ``depth/compressedDepth`` for tracker_node's ``depth_input:=compressedDepth``. The
frames' pictures are never a depth stream when the bag has others, raw or compressed. At
``rate`` > 0 a forward jump in stamps longer than ``max_gap_s`` is not waited out (warning).

Pacing (``rate``): ``1.0`` real time, ``2.0`` twice as fast; ``0.0`` as fast as possible, lock-step:
frame k + 1 goes out once a TrackArray stamped like frame k arrived on ``tracks`` (or after
``lockstep_timeout_s``); with no publisher on ``tracks``, frame k + 1 goes out once every reliable
image subscriber acknowledged frame k (at most 0.1 s), so images sent back to back do not overrun
slower subscribers (Fast DDS acknowledges fragmented ~1 MB images within milliseconds, small messages
on the writer's heartbeat: every 3 s by default, every 50 ms under ``config/fastdds_profile.xml``, which
the ``replay`` and ``launch`` commands give their nodes; detections-only replays are not paced).
Before exiting, the node waits (up to 3.5 s) until its subscribers acknowledged the last frames.

A missing or unreadable source, detections file or bag stops the node at start with a one-line error
and exit status 2. A frame that cannot be decoded, or a truncated bag, is logged and skipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
from std_msgs.msg import Header, String

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.io.bag import BagError, bag_files, bag_topics, cdr_header_stamp_ns, read_bag
from ros2_tracker.io.mot import MotFormatError, MotRows, read_mot
from ros2_tracker.io.sequence import SequenceInfo, fps_problem, read_sequence_info
from ros2_tracker.io.video import FrameSource, FrameSourceError, open_frame_source
from ros2_tracker.nodes.conversions import arrays_to_detections, ns_to_stamp
from ros2_tracker.nodes.image_conversions import bgr_to_image_msg
from ros2_tracker.nodes.params import declare_config
from ros2_tracker.nodes.spinning import drive, latched_qos, run_node, transport_topic

__all__ = ["ReplayConfig", "ReplayNode", "bag_roles", "main"]

IMAGE_QUEUE_DEPTH = 10  # reliable keep-last history of the image publisher (frames are ~1 MB)
DETECTIONS_QUEUE_DEPTH = 100  # as the tracker's detections subscription
ACK_PACING_TIMEOUT_S = 0.1  # rate 0 without a tracker: longest wait for a frame's image to be acknowledged
END_ACK_TIMEOUT_S = 3.5  # at the end, longest wait for subscribers to acknowledge the last frames
TRACKS_PUBLISHER_GRACE_S = 1.0  # rate 0 with wait_for_subscribers: longest wait for a tracks publisher
_NS = 1_000_000_000
MAX_STAMP_S = 2**31 - 1
"""Latest stamp a ROS message can carry [s] (``builtin_interfaces/Time.sec`` is an int32)."""
_RECORDER_SETTLE_S = 0.2  # after the recorder's subscriptions show in this graph: for the publishers' side
_BAG_TYPES = {"image": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage",
              "detections": "ros2_tracker/msg/Detection2DArray"}
# bags: streams republished beside the frames, ahead of the frame they were recorded before (they start no
# frame of their own): a gyro, the camera's intrinsics and depth images, for tracker_node's use_imu and
# use_depth
_SIDE_TYPES = {"imu": "sensor_msgs/msg/Imu", "camera_info": "sensor_msgs/msg/CameraInfo",
               "depth": "sensor_msgs/msg/Image", "compressed_depth": "sensor_msgs/msg/CompressedImage"}
_DEPTH_ROLES = ("depth", "compressed_depth")  # one of them: a raw depth stream, else a compressedDepth one
_COMPRESSED_DEPTH = "/compresseddepth"  # image_transport's compressedDepth topics end so (lower case)
_REPLAYED_TYPES = {**_BAG_TYPES, **_SIDE_TYPES}
IMU_QUEUE_DEPTH = 1000  # reliable keep-last history of the IMU publisher (a 400 Hz gyro's 2.5 s)
# words in the names of an RGB-D camera's Image streams that are not its pictures (RealSense
# aligned_depth_to_color, ZED depth_registered, stereo disparity and confidence): never the frames' image when
# another Image topic is there
_DEPTH_WORDS = ("depth", "disparity", "confidence")
_REGISTERED_WORDS = ("aligned", "registered")  # a depth image in the colour camera's pixels (RealSense, ZED)


def _says_depth(topic: str) -> bool:
    """Whether a topic's name says it is an RGB-D camera's depth stream rather than its pictures."""
    return any(w in topic.lower() for w in _DEPTH_WORDS)


@dataclass(frozen=True)
class ReplayConfig(ConfigBase):
    """Parameters of ``replay_node``."""

    source: str = param("", "MOTChallenge sequence folder, video file, or rosbag2 MCAP bag (folder or "
                        ".mcap); must be set", read_only=True)
    rate: float = param(1.0, "Playback speed: 1 = real time, 2 = twice as fast, 0 = as fast as possible, "
                        "lock-step with the tracks topic", low=0.0, high=1000.0, read_only=True)
    lockstep_timeout_s: float = param(2.0, "Rate 0: longest wait for frame k's tracks before frame k + 1",
                                      low=0.0, high=3600.0, unit="s", read_only=True)
    publish_images: bool = param(True, "Publish the frames on image_topic", read_only=True)
    publish_detections: bool = param(True, "Publish the source's detections (det/det.txt, detections_file "
                                     "or the bag's Detection2DArray topic) when it has them", read_only=True)
    detections_file: str = param("", "MOTChallenge detection file; default det/det.txt of the sequence",
                                 read_only=True)
    detections_class_id: int = param(0, "class_id of detections read from a MOT file (MOTChallenge "
                                     "detections are pedestrians: COCO person = 0)", low=-1,
                                     high=2**31 - 1, read_only=True)
    frame_id: str = param("camera", "header.frame_id of published images and detections (folder/video)",
                          read_only=True)
    start_stamp: float = param(0.0, "Stamp of frame 1 (folder/video; bags keep their recorded stamps)",
                               low=0.0, high=float(MAX_STAMP_S), unit="s", read_only=True)
    publish_clock: bool = param(True, "Publish rosgraph_msgs/Clock on /clock with each frame's stamp",
                                read_only=True)
    fps: float = param(0.0, "Frame rate; 0 = from seqinfo.ini or the video", low=0.0, high=10000.0,
                       unit="Hz", read_only=True)
    exit_on_end: bool = param(True, "Exit when the source is exhausted (else keep the node alive)",
                              read_only=True)
    image_topic: str = param("image", "Topic of the images (CompressedImage from bags: <image_topic>/"
                             "compressed)", read_only=True)
    detections_topic: str = param("detections", "Topic of the detections", read_only=True)
    publish_imu: bool = param(True, "Bags: republish the bag's sensor_msgs/Imu and CameraInfo (for "
                              "tracker_node's use_imu) on imu_topic / camera_info_topic, each message ahead "
                              "of the frame it was recorded before (the CameraInfo also with publish_depth)",
                              read_only=True)
    imu_topic: str = param("imu", "Bags: topic of the republished IMU messages", read_only=True)
    camera_info_topic: str = param("camera_info", "Bags: topic of the republished CameraInfo messages",
                                   read_only=True)
    publish_depth: bool = param(True, "Bags: republish the bag's depth images (for tracker_node's use_depth) "
                                "on depth_topic, each ahead of the frame nearest to it in stamp: the "
                                "sensor_msgs/Image topic named as depth_topic, else the first whose name "
                                "says depth and aligned or registered (a depth image in the colour "
                                "camera's pixels), else the first whose name says depth; without one, a "
                                "CompressedImage topic of image_transport's compressedDepth (ending in "
                                "/compressedDepth) the same way, on depth_topic/compressedDepth; with them "
                                "the CameraInfo", read_only=True)
    depth_topic: str = param("depth", "Bags: topic of the republished depth images", read_only=True)
    tracks_topic: str = param("tracks", "Topic whose TrackArray stamps pace the rate-0 lock-step",
                              read_only=True)
    bag_namespace: str = param("", "Bags of several cameras: replay the topics of this namespace (e.g. "
                               "/cam2: /cam2/detections, /cam2/image) and publish them on this node's own; "
                               "empty = the topics of the node's own namespace, else those named as "
                               "detections_topic / image_topic, else the first of each type (of the images, "
                               "the first whose name does not say depth, disparity or confidence)",
                               read_only=True)
    max_frames: int = param(0, "Publish at most this many frames (0 = all)", low=0, high=2**31 - 1,
                            read_only=True)
    reorder_window_s: float = param(0.5, "Bags: messages recorded up to this much (recording time) after "
                                    "a later frame's still go out with their own frame (a detector's "
                                    "output arrives after the next image); a stamp further back starts a "
                                    "new timeline (a looped bag), with a warning", low=0.0, high=60.0,
                                    unit="s", read_only=True)
    max_gap_s: float = param(10.0, "Rate > 0: a jump forward in stamps longer than this (recording time) "
                             "is not waited out; the replay warns and goes on at once", low=0.0, high=1.0e6,
                             unit="s", read_only=True)
    progress_every: int = param(100, "Log progress every this many frames (0 = never)", low=0,
                                high=2**31 - 1, read_only=True)
    wait_for_subscribers: int = param(0, "Before the first frame, wait until this many subscriptions "
                                      "(image and detections together) matched, e.g. 1 for a tracker or a "
                                      "detector; with wait_for_recorder the recorder's come on top; at "
                                      "rate 0 then up to 1 s more for a tracks publisher to show up, if none "
                                      "has yet", low=0, high=1000, read_only=True)
    wait_for_subscribers_timeout_s: float = param(10.0, "Longest wait for wait_for_subscribers (and for "
                                                  "wait_for_recorder)", low=0.0, high=3600.0, unit="s",
                                                  read_only=True)
    wait_for_recorder: bool = param(False, "Before the first frame, wait until recorder_node (named "
                                    "recorder, in this namespace) says on recorder/ready that it records "
                                    "every topic and this node's graph lists its subscriptions, so its bag "
                                    "starts with frame 1 (pipeline.launch.py's record:=true)", read_only=True)

    def check(self) -> None:
        """``source`` must be set; ``fps`` is 0 or a frame rate of ``io.sequence.FPS_RANGE``."""
        if not self.source:
            raise ConfigError("source: must be set to a MOTChallenge folder, a video file or an MCAP bag "
                              "(-p source:=/path)")
        if self.fps != 0 and (problem := fps_problem(self.fps)):
            raise ConfigError(f"fps: 0 (the source's own) or a frame rate: {problem}")


@dataclass
class ReplayItem:
    """What goes out for one frame: messages by publisher role (``image``, ``compressed``, ``detections``).

    A value is a message, or CDR bytes republished as they are (bags).
    """

    number: int
    stamp_ns: int
    messages: dict[str, list[Any]] = field(default_factory=dict)
    decode_s: float = 0.0
    side: list[tuple[str, Any]] = field(default_factory=list)  # (role, CDR bytes): published first

    def add(self, role: str, msg: Any) -> None:
        """Queue ``msg`` for the ``role`` publisher."""
        self.messages.setdefault(role, []).append(msg)


def is_bag(path: Path) -> bool:
    """True for an ``.mcap`` file or a folder holding ``metadata.yaml`` or ``*.mcap`` files."""
    if path.is_file():
        return path.suffix in (".mcap", ".db3")
    return path.is_dir() and ((path / "metadata.yaml").is_file() or any(path.glob("*.mcap")))


def bag_roles(cfg: ReplayConfig, topics: dict[str, str] | None = None) -> dict[str, str]:
    """What a replay with ``cfg`` republishes of the bag ``cfg.source``, read without a node: ``{bag topic:
    role}``, the roles being ``image``, ``compressed`` (the frames' pictures), ``detections``, ``imu``,
    ``camera_info``, ``depth`` and ``compressed_depth`` (so a caller configures the nodes it feeds).
    ``topics``: the bag's ``{topic: type}`` when the caller has read them already (a bag without an index is
    scanned for them).

    Raises:
        BagError: a missing or unreadable bag, or one with nothing to replay.
    """
    silent = SimpleNamespace(info=lambda _msg: None, warning=lambda _msg: None, error=lambda _msg: None)
    return dict(_BagReplay(cfg, silent, topics=topics).topics)


class _FrameReplay:
    """Items of a MOT folder or video: frames (optional) and detections from a MOT file (optional)."""

    def __init__(self, cfg: ReplayConfig, log: Any) -> None:
        self.cfg, self.log = cfg, log
        self.source, seq = self._open_source(Path(cfg.source))
        self.fps = self.source.fps if self.source is not None else (
            cfg.fps or (seq.fps if seq is not None else 0.0))
        self.dets, self.det_path = self._read_detections(seq)
        if self.source is None and self.dets is None:
            raise FrameSourceError(f"{cfg.source}: neither images nor detections to publish")
        self.length = self.source.length if self.source is not None and cfg.publish_images else max(
            seq.length if seq is not None else 0, self.dets.last_frame if self.dets is not None else 0)
        if cfg.max_frames:
            self.length = min(self.length, cfg.max_frames) if self.length else cfg.max_frames
        last_ns = self.stamp_ns(self.length) if self.length else 0
        if last_ns > MAX_STAMP_S * _NS:  # the seconds would wrap round
            raise FrameSourceError(f"{cfg.source}: frame {self.length} would be stamped "
                                   f"{last_ns / _NS:.0f} s, beyond the latest ROS stamp ({MAX_STAMP_S} s): "
                                   "lower start_stamp")
        self._det_starts = (np.searchsorted(self.dets.frames, np.arange(1, self.dets.last_frame + 2))
                            if self.dets is not None else None)
        self.roles = ((["image"] if cfg.publish_images and self.source is not None else [])
                      + (["detections"] if self.dets is not None else []))

    def _open_source(self, src: Path) -> tuple[FrameSource | None, SequenceInfo | None]:
        """The frame source, and the MOT sequence it belongs to; no frames for a folder without images."""
        try:
            source = open_frame_source(src, self.cfg.fps)
        except FrameSourceError:
            if not (src.is_dir() and (src / "seqinfo.ini").is_file()):
                raise
            if self.cfg.publish_images:
                self.log.warning(f"{src}: no images (img1/); publishing detections only")
            return None, read_sequence_info(src)
        return source, source.sequence

    def _read_detections(self, seq: SequenceInfo | None) -> tuple[MotRows | None, Path | None]:
        if not self.cfg.publish_detections:
            return None, None
        if self.cfg.detections_file:
            path = Path(self.cfg.detections_file)
            return read_mot(path), path  # MotFormatError (clear message) when missing or malformed
        path = seq.root / "det" / "det.txt" if seq is not None else None
        if path is None or not path.is_file():
            self.log.info(f"{self.cfg.source}: no det/det.txt; publishing images only")
            return None, None
        return read_mot(path), path

    def describe(self) -> str:
        """One line for the start-up log."""
        src = self.source
        dets = f", detections from {self.det_path} ({len(self.dets)} rows)" if self.dets is not None else \
            ", no detections"
        origin = src.fps_origin if src is not None else "seqinfo.ini"
        return (f"{self.cfg.source}: {self.length or 'unknown number of'} frames at {self.fps:g} fps "
                f"({origin}){dets}")

    def stamp_ns(self, number: int) -> int:
        """Deterministic stamp of MOT frame ``number``: start_stamp + (number - 1) / fps [ns]."""
        return round(self.cfg.start_stamp * _NS) + round((number - 1) * _NS / self.fps)

    def items(self) -> Iterator[ReplayItem]:
        """One item per frame, in order."""
        if self.cfg.publish_images and self.source is not None:
            frames = self.source.frames(self.cfg.max_frames)
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    return
                item = ReplayItem(frame.number, self.stamp_ns(frame.number))
                if frame.image is None:
                    self.log.warning(f"{frame.error}; publishing its detections only")
                else:
                    item.add("image", bgr_to_image_msg(frame.image, Image, "bgr8", self._header(item)))
                self._add_detections(item)
                item.decode_s = time.perf_counter() - t0
                yield item
        else:
            for number in range(1, self.length + 1):
                t0 = time.perf_counter()
                item = ReplayItem(number, self.stamp_ns(number))
                self._add_detections(item)
                item.decode_s = time.perf_counter() - t0
                yield item

    def _header(self, item: ReplayItem) -> Header:
        return Header(stamp=ns_to_stamp(item.stamp_ns), frame_id=self.cfg.frame_id)

    def _add_detections(self, item: ReplayItem) -> None:
        if self.dets is None or self._det_starts is None:
            return
        from ros2_tracker import msg as tracker_msgs

        k = item.number
        rows = slice(self._det_starts[k - 1], self._det_starts[k]) if k <= self.dets.last_frame else slice(0)
        boxes = tlwh_to_xyxy(self.dets.boxes_tlwh[rows])
        classes = np.full(len(boxes), self.cfg.detections_class_id, dtype=np.int64)
        item.add("detections", arrays_to_detections(boxes, self.dets.scores[rows], classes,
                                                    self._header(item), tracker_msgs))

    def close(self) -> None:
        """Release the video capture."""
        if self.source is not None:
            self.source.close()


class _BagReplay:
    """Items of a bag: its Image / CompressedImage / Detection2DArray messages grouped by header stamp, with
    its Imu / CameraInfo messages sent ahead of the frames they were recorded before and its depth images
    ahead of the frames nearest to them in stamp."""

    def __init__(self, cfg: ReplayConfig, log: Any, resolve: Callable[[str], str] | None = None, *,
                 topics: dict[str, str] | None = None) -> None:
        """``resolve``: the node's topic name resolution (its namespace), so a bag of several cameras
        replays the one of the node's namespace (``/cam1/detections`` for a replay in ``/cam1``);
        ``topics``: the bag's ``{topic: type}`` when already read (:func:`bag_topics` otherwise)."""
        self._count = 0  # frames yielded by items()
        self.cfg, self.log = cfg, log
        self._resolve = resolve or (lambda name: "/" + name.strip("/"))
        if cfg.bag_namespace:  # another camera's topics than the node's own namespace's
            ns = "/" + cfg.bag_namespace.strip("/")
            self._resolve = lambda name: f"{ns.rstrip('/')}/{name.strip('/')}"
        bag_files(cfg.source)  # BagError for a missing/unsupported bag, before anything else
        topics = bag_topics(cfg.source) if topics is None else topics
        wanted = {"image": cfg.publish_images, "compressed": cfg.publish_images,
                  "detections": cfg.publish_detections}
        self.topics: dict[str, str] = self._choose(topics, wanted)  # bag topic -> role
        ignored = sorted(set(topics) - set(self.topics))
        if ignored:
            log.info(f"bag topics not replayed: {', '.join(ignored)}")
        for role in ("image", "detections"):  # the node's own topic, of another type: a warning
            own = self._resolve(self._base(role))
            if wanted[role] and own in ignored:
                log.warning(f"bag topic {own} is {topics[own]}, not {_BAG_TYPES[role]}: not replayed as the "
                            f"{role}")
        if cfg.bag_namespace and not any(t == self._resolve(self._base(r)) for t, r in self.topics.items()):
            raise BagError(f"{cfg.source}: no topic of bag_namespace {cfg.bag_namespace} to replay; bag "
                           f"topics: {', '.join(sorted(topics))}")
        if not self.topics:
            raise BagError(f"{cfg.source}: no topic to replay (sensor_msgs/Image, CompressedImage or "
                           f"Detection2DArray; publish_images/publish_detections permitting); bag topics: "
                           f"{', '.join(f'{t} [{ty}]' for t, ty in topics.items()) or 'none'}")
        self.roles = sorted(set(self.topics.values()))
        self.length = cfg.max_frames
        self.fps = cfg.fps

    def _choose(self, topics: dict[str, str], wanted: dict[str, bool]) -> dict[str, str]:
        """The bag topics to replay (topic -> role): one per frame role wanted, and with those the IMU,
        camera_info and depth streams (``publish_imu``, ``publish_depth``; a bag of them alone has no frame
        to replay)."""
        cfg = self.cfg
        wanted = {**wanted, "imu": cfg.publish_imu, "camera_info": cfg.publish_imu or cfg.publish_depth,
                  "depth": cfg.publish_depth, "compressed_depth": cfg.publish_depth}
        chosen: dict[str, str] = {}
        for role, msgtype in _REPLAYED_TYPES.items():  # the frames' roles first
            names = [t for t, ty in topics.items() if ty == msgtype and t not in chosen]
            if role == "image":  # an RGB-D camera's depth streams are not its pictures, when it has some
                pictures = [t for t in names if not _says_depth(t)]
                # (nor when its pictures are compressed: a RealSense bag of compressed colour and raw depth)
                names = pictures or ([] if any(not _says_depth(t) and ty == _BAG_TYPES["compressed"]
                                               for t, ty in topics.items()) else names)
            elif role == "compressed":  # never compressedDepth, and others saying depth only if alone
                names = [t for t in names if not t.lower().endswith(_COMPRESSED_DEPTH)]
                names = [t for t in names if not _says_depth(t)] or names
            elif role in _DEPTH_ROLES:  # of the other topics of its type: the one named so, or saying depth
                base = self._base(role)
                names = [t for t in names if t == self._resolve(base) or t.strip("/") == base or (
                    "depth" in t.lower() and (role == "depth" or t.lower().endswith(_COMPRESSED_DEPTH)))]
                if any(r in _DEPTH_ROLES for r in chosen.values()):
                    names = []
            if names and wanted[role] and (role in _BAG_TYPES or bool(chosen)):
                chosen[self._pick(names, role)] = role
        return chosen

    def _base(self, role: str) -> str:
        topic = {"detections": self.cfg.detections_topic, "imu": self.cfg.imu_topic,
                 "camera_info": self.cfg.camera_info_topic, "depth": self.cfg.depth_topic,
                 "compressed_depth": self.cfg.depth_topic}.get(role, self.cfg.image_topic)
        base = topic.strip("/")
        return base + {"compressed": "/compressed", "compressed_depth": "/compressedDepth"}.get(role, "")

    def _pick(self, names: list[str], role: str) -> str:
        """The topic of ``role`` among ``names``: the node's own, else the one named as configured, else one
        ending in that name, else the first (for images: the first that is not a depth stream)."""
        base = self._base(role)
        own = self._resolve(base)  # the node's own topic: its namespace's camera
        if role in _DEPTH_ROLES:  # depth in the colour camera's pixels first
            names = sorted(names, key=lambda n: not any(w in n.lower() for w in _REGISTERED_WORDS))
        best = next((n for n in names if n == own), None) or \
            next((n for n in names if n.strip("/") == base), None) or \
            next((n for n in names if n.strip("/").endswith("/" + base)), names[0])
        if len(names) > 1 and best != own:  # (the node's own camera: the others are listed as not replayed)
            self.log.warning(f"bag has {len(names)} {_REPLAYED_TYPES[role]} topics; replaying {best}, not "
                             f"{', '.join(n for n in names if n != best)}")
        return best

    def describe(self) -> str:
        """One line for the start-up log."""
        return f"{self.cfg.source}: bag, replaying {', '.join(f'{t} as {r}' for t, r in self.topics.items())}"

    def items(self) -> Iterator[ReplayItem]:
        """Messages grouped by their header stamp, frames in stamp order. A message recorded late (up to
        ``reorder_window_s`` after a later frame's, e.g. detections after the next image) still joins its
        own frame; one stamped further back than that starts a new timeline (a looped bag): what is
        pending goes out first, with a warning."""
        window = round(self.cfg.reorder_window_s * _NS)
        pending: dict[int, ReplayItem] = {}
        side: list[tuple[str, Any]] = []  # IMU and camera_info read since the last frame went out
        depth: list[tuple[int, str, Any]] = []  # depth images not sent yet: (stamp, role, CDR bytes)
        newest: int | None = None  # the newest stamp of the current timeline
        t0 = time.perf_counter()
        self._count = 0
        for msg in read_bag(self.cfg.source, self.topics, on_damage=self.log.error):
            role = self.topics[msg.topic]
            if role in _SIDE_TYPES and role not in _DEPTH_ROLES:  # out with the next frame, ahead of it
                side.append((role, msg.data))
                continue
            try:
                stamp = cdr_header_stamp_ns(msg.data)
            except ValueError as exc:
                self.log.warning(f"{msg.topic}: skipping a message without a readable header stamp ({exc})")
                continue
            if newest is not None and stamp < newest - window:  # a new timeline
                self.log.warning(f"{msg.topic}: stamps went back {(newest - stamp) / _NS:.3f} s (a looped or "
                                 "concatenated recording?): replaying on from there")
                yield from self._flush(pending, None, t0, side, depth)
                newest, t0 = None, time.perf_counter()
            if role in _DEPTH_ROLES:  # out ahead of the frame nearest in stamp; no frame of its own
                depth.append((stamp, role, msg.data))
                continue
            newest = stamp if newest is None else max(newest, stamp)
            pending.setdefault(stamp, ReplayItem(0, stamp)).add(role, msg.data)
            for item in self._flush(pending, newest - window, t0, side, depth):  # frames no message can join
                t0 = time.perf_counter()
                yield item
            if self.cfg.max_frames and self._count >= self.cfg.max_frames:
                return
        yield from self._flush(pending, None, t0, side, depth)

    def _flush(self, pending: dict[int, ReplayItem], before: int | None, t0: float,
               side: list[tuple[str, Any]], depth: list[tuple[int, str, Any]]) -> Iterator[ReplayItem]:
        """The pending frames stamped before ``before`` (all with None), oldest first, numbered; the first
        takes the ``side`` messages read so far (the list is emptied), each takes the ``depth`` images nearer
        in stamp to it than to the next frame (taken from the list; the last of all, with None, the rest)."""
        half = round(self.cfg.reorder_window_s * _NS) // 2
        for stamp in sorted(pending):
            if before is not None and stamp >= before:
                return
            if self.cfg.max_frames and self._count >= self.cfg.max_frames:
                return
            item = pending.pop(stamp)
            item.side, side[:] = list(side), []
            following = min(pending, default=None)  # the next frame (one further than the window: none yet)
            if following is None and before is None:
                limit = None
            else:
                limit = stamp + half if following is None else (stamp + following) // 2
            item.side += [(role, data) for s, role, data in depth if limit is None or s <= limit]
            depth[:] = [(s, role, data) for s, role, data in depth if limit is not None and s > limit]
            self._count += 1
            item.number = self._count
            item.decode_s = time.perf_counter() - t0
            yield item

    def close(self) -> None:
        """Nothing to release."""


class ReplayNode(Node):
    """Publishes a recorded sequence; :meth:`run` drives it (module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("replay_node", **kwargs)
        self.cfg = declare_config(self, ReplayConfig)
        src = Path(self.cfg.source)
        if not src.exists():
            raise FrameSourceError(f"source: {src} does not exist (expected a MOTChallenge folder, a video "
                                   "file or an MCAP bag)")
        self.replay = _BagReplay(self.cfg, self.get_logger(), self.resolve_topic_name) if is_bag(src) else \
            _FrameReplay(self.cfg, self.get_logger())
        self._pubs = self._make_publishers(self.replay.roles)
        self._recorded: list[str] = []  # topics the recorder (wait_for_recorder) said it records
        self._clock_pub = (self.create_publisher(Clock, "/clock", DETECTIONS_QUEUE_DEPTH)
                           if self.cfg.publish_clock else None)
        self._timing_pub = self.create_publisher(String, "~/timing", 100)
        self._tracks_seen: set[int] = set()
        self._tracks_sub = None
        if self.cfg.rate == 0.0:
            from ros2_tracker.msg import TrackArray

            # best effort matches reliable and best-effort tracks publishers; only stamps are read
            qos = QoSProfile(depth=DETECTIONS_QUEUE_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT)
            self._tracks_sub = self.create_subscription(TrackArray, self.cfg.tracks_topic, self._on_tracks,
                                                        qos, raw=True)
        self.published = 0
        self.get_logger().info(f"replaying {self.replay.describe()}; rate {self.cfg.rate:g}"
                               f"{' (lock-step)' if self.cfg.rate == 0 else ''}")

    def _make_publishers(self, roles: list[str]) -> dict[str, Any]:
        from ros2_tracker.msg import Detection2DArray

        kinds = {"imu": (Imu, self.cfg.imu_topic, IMU_QUEUE_DEPTH),
                 "camera_info": (CameraInfo, self.cfg.camera_info_topic, 10),
                 "depth": (Image, self.cfg.depth_topic, IMAGE_QUEUE_DEPTH),
                 # image_transport's: under the base name after remapping (tracker_node subscribes so)
                 "compressed_depth": (CompressedImage, transport_topic(self, self.cfg.depth_topic,
                                                                       "compressedDepth"), IMAGE_QUEUE_DEPTH),
                 "image": (Image, self.cfg.image_topic, IMAGE_QUEUE_DEPTH),
                 "compressed": (CompressedImage, self.cfg.image_topic.rstrip("/") + "/compressed",
                                IMAGE_QUEUE_DEPTH),
                 "detections": (Detection2DArray, self.cfg.detections_topic, DETECTIONS_QUEUE_DEPTH)}
        out = {}
        for role in roles:
            cls, topic, depth = kinds[role]
            out[role] = self.create_publisher(cls, topic, QoSProfile(depth=depth,
                                                                     reliability=ReliabilityPolicy.RELIABLE))
        return out

    def _on_tracks(self, data: bytes) -> None:
        try:
            self._tracks_seen.add(cdr_header_stamp_ns(data))
        except ValueError:
            pass

    # ------------------------------------------------------------------------------------ driving
    def run(self, executor: Any) -> None:
        """Publish every item at its time, then wait for delivery (and exit or idle, per exit_on_end)."""
        self._wait_for_recorder(executor)
        self._wait_for_subscribers(executor)
        start_wall, first_stamp, previous = time.monotonic(), None, None
        t_log = time.monotonic()
        for item in self.replay.items():
            if not rclpy.ok():
                return
            first_stamp = item.stamp_ns if first_stamp is None else first_stamp
            gap = 0.0 if previous is None else (item.stamp_ns - previous) / _NS
            if self.cfg.rate > 0 and (gap > self.cfg.max_gap_s or gap < 0):  # re-anchor: go on at once
                if gap > 0:
                    self.get_logger().warning(f"frame {item.number}: stamps jump {gap:.1f} s ahead; not "
                                              f"waited out (max_gap_s {self.cfg.max_gap_s:g})")
                start_wall, first_stamp = time.monotonic(), item.stamp_ns
            previous = item.stamp_ns
            if self.cfg.rate > 0:
                due = start_wall + (item.stamp_ns - first_stamp) / _NS / self.cfg.rate
                self._spin_until(executor, lambda due=due: time.monotonic() >= due, due - time.monotonic())
            self._publish(item)
            if self.cfg.rate == 0:
                self._lockstep(executor, item)
            if self.cfg.progress_every and self.published % self.cfg.progress_every == 0:
                now = time.monotonic()
                total = f"/{self.replay.length}" if self.replay.length else ""
                self.get_logger().info(f"frame {item.number}{total}: {self.published} frames published, "
                                       f"{self.cfg.progress_every / max(now - t_log, 1e-9):.1f} fps")
                t_log = now
        self._finish(executor, time.monotonic() - start_wall)

    def _publish(self, item: ReplayItem) -> None:
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=ns_to_stamp(item.stamp_ns)))
        for role, data in item.side:  # the gyro ahead of the frame
            self._pubs[role].publish(data)
        for role, msgs in item.messages.items():
            for msg in msgs:
                self._pubs[role].publish(msg)
        self._timing_pub.publish(String(data=json.dumps(
            {"stamp": item.stamp_ns / _NS, "stage": "decode", "seconds": item.decode_s})))
        self.published += 1

    def _lockstep(self, executor: Any, item: ReplayItem) -> None:
        """Rate 0: wait for frame ``item``'s tracks, or else for the image subscribers' acknowledgements."""
        if self.count_publishers(self.cfg.tracks_topic) == 0:
            # No tracker to pace us. Images (~1 MB) sent back to back overrun reliable subscribers (frames
            # were lost), so wait until they acknowledged this frame (module docstring).
            image_pub = self._pubs.get("image") or self._pubs.get("compressed")
            if image_pub is not None and ("image" in item.messages or "compressed" in item.messages):
                image_pub.wait_for_all_acked(Duration(seconds=ACK_PACING_TIMEOUT_S))
            return
        timeout = self.cfg.lockstep_timeout_s
        if not self._spin_until(executor, lambda: item.stamp_ns in self._tracks_seen, timeout):
            self.get_logger().warning(f"frame {item.number}: no tracks stamped {item.stamp_ns / _NS:.6f} "
                                      f"on {self.cfg.tracks_topic} within {timeout:g} s; going on")
        self._tracks_seen.discard(item.stamp_ns)

    def _spin_until(self, executor: Any, done: Any, timeout_s: float) -> bool:
        """Spin (callbacks run) until ``done()`` or ``timeout_s`` passed; returns ``done()``."""
        end = time.monotonic() + max(timeout_s, 0.0)
        while not done() and rclpy.ok():
            left = end - time.monotonic()
            if left <= 0:
                break
            executor.spin_once(timeout_sec=min(left, 0.05))
        return bool(done())

    def _wait_for_recorder(self, executor: Any) -> None:
        """``wait_for_recorder``: the recorder subscribes once it has seen every topic's publisher, after the
        tracker may already have taken the first frames: wait for its ``recorder/ready``."""
        if not self.cfg.wait_for_recorder:
            return
        said: list[str] = []
        sub = self.create_subscription(String, "recorder/ready", lambda m: said.append(m.data), latched_qos())
        t0, timeout = time.monotonic(), self.cfg.wait_for_subscribers_timeout_s
        if self._spin_until(executor, lambda: bool(said), timeout):
            # Its subscriptions have matched their publishers on its side; the publishers (the tracker's
            # /tracks) match them when the recorder's announcement reaches their process, some ms later,
            # and drop what they publish before (the first tracks were missing once in CI). That
            # announcement reaches this process at the same time: wait until it lists them, then a little.
            topics = self._recorded = [t for t in said[0].split(",") if t]
            self._spin_until(executor, lambda: all(self._recorder_subscribes(t) for t in topics),
                             timeout - (time.monotonic() - t0))
            self._spin_until(executor, lambda: False, _RECORDER_SETTLE_S)
            self.get_logger().info(f"the recorder records {said[0] or 'nothing'} "
                                   f"(ready after {time.monotonic() - t0:.2f} s)")
        else:
            self.get_logger().warning(f"no word from the recorder on {sub.topic_name} after {timeout:g} s; "
                                      "starting anyway (its bag may miss the first frames)")
        self.destroy_subscription(sub)

    def _recorder_subscribes(self, topic: str) -> bool:
        """Whether this process's graph lists the recorder (``recorder`` in this namespace) on ``topic``."""
        ns = self.get_namespace()
        return any(i.node_name == "recorder" and i.node_namespace == ns
                   for i in self.get_subscriptions_info_by_topic(topic))

    def _wait_for_subscribers(self, executor: Any) -> None:
        """``wait_for_subscribers`` counts the nodes this replay feeds: the recorder's subscriptions (it said
        which, ``wait_for_recorder``) come on top, or they alone would meet the count before the tracker's
        matched (its first frames then went to no one)."""
        need = self.cfg.wait_for_subscribers
        if not need or not self._pubs:
            return
        # the frames' topics (image and detections): a tracker that also takes the IMU's would count thrice
        pubs = [p for role, p in self._pubs.items() if role not in _SIDE_TYPES]
        need += sum(p.topic_name in self._recorded for p in pubs)
        t0 = time.monotonic()
        if self._spin_until(executor, lambda: sum(p.get_subscription_count() for p in pubs) >= need,
                            self.cfg.wait_for_subscribers_timeout_s):
            self.get_logger().info(f"{need} subscription(s) matched after {time.monotonic() - t0:.2f} s")
        else:
            counts = ", ".join(f"{p.topic_name} {p.get_subscription_count()}" for p in pubs)
            self.get_logger().warning(f"subscriptions after {self.cfg.wait_for_subscribers_timeout_s:g} s: "
                                      f"{counts} (wanted {need} in all); starting anyway")
        self._wait_for_side_subscribers(executor)
        self._wait_for_tracks_publishers(executor)

    def _wait_for_side_subscribers(self, executor: Any) -> None:
        """Let the IMU, camera_info and depth publishers match every subscription the graph shows on their
        topics before the first frame: a tracker's are made with its detections subscription, but each
        endpoint is matched on its own, and a best-effort reader drops what comes before (the first frame
        went without its depth image)."""
        side = [p for role, p in self._pubs.items() if role in _SIDE_TYPES]
        if not side:
            return

        def matched() -> bool:
            return all(p.get_subscription_count() >= self.count_subscribers(p.topic_name) for p in side)

        if not self._spin_until(executor, matched, self.cfg.wait_for_subscribers_timeout_s):
            counts = ", ".join(f"{p.topic_name} {p.get_subscription_count()} of "
                               f"{self.count_subscribers(p.topic_name)}" for p in side)
            self.get_logger().warning(f"subscriptions matched: {counts}; the first frames may go without "
                                      "them")

    def _wait_for_tracks_publishers(self, executor: Any) -> None:
        """Rate 0: before the first frame, let the tracks subscription match every tracks publisher the graph
        shows. Discovery lists a publisher before its endpoint has matched ours, and a tracker answering the
        first frame in between would send that frame's tracks to no one: the lock-step would stall on it.
        When none is listed yet, wait up to ``TRACKS_PUBLISHER_GRACE_S`` for one: discovery announces a
        participant's subscriptions and its publications separately, so the tracker whose detections
        subscription was just matched may not list its tracks publisher yet (the first frames then went
        out without the lock-step)."""
        sub, topic = self._tracks_sub, self.cfg.tracks_topic
        if sub is None:
            return
        if not self.count_publishers(topic):
            self._spin_until(executor, lambda: self.count_publishers(topic) > 0, TRACKS_PUBLISHER_GRACE_S)
            if not self.count_publishers(topic):
                return
        if not self._spin_until(executor, lambda: sub.get_publisher_count() >= self.count_publishers(topic),
                                self.cfg.wait_for_subscribers_timeout_s):
            matched, listed = sub.get_publisher_count(), self.count_publishers(topic)
            self.get_logger().warning(f"{topic}: {matched} of {listed} publishers matched; the lock-step may "
                                      "wait on the first frames")

    def _finish(self, executor: Any, seconds: float) -> None:
        # Reliable delivery of the last frames: Fast DDS acknowledges on its heartbeat (every 3 s by
        # default), so this can take that long; only publishers with subscribers are waited for.
        for pub in self._pubs.values():
            if pub.get_subscription_count() > 0:
                pub.wait_for_all_acked(Duration(seconds=END_ACK_TIMEOUT_S))
        self.get_logger().info(f"replay done: {self.published} frames in {seconds:.2f} s "
                               f"({self.published / max(seconds, 1e-9):.1f} fps)")
        self.replay.close()
        if not self.cfg.exit_on_end:
            while rclpy.ok():
                executor.spin_once(timeout_sec=0.5)


def main(args: list[str] | None = None) -> int:
    """Run the node; exit status 2 on a configuration or source error, 0 otherwise."""
    return run_node(ReplayNode, "replay_node", args, fatal="cannot start",
                    errors=(FrameSourceError, BagError, MotFormatError),
                    run=lambda node: drive(node, node.run))


if __name__ == "__main__":
    sys.exit(main())
