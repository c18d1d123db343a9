"""recorder_node: record topics into a rosbag2 MCAP bag, serialized messages as they arrive.

Subscriptions are raw (no deserialisation); each topic's type comes from the graph
(``get_topic_names_and_types``), re-checked every ``discovery_period_s`` until every requested topic
has a publisher or ``max_wait_s`` passed. The subscription QoS follows the publishers (best effort if any
publisher is best effort, transient local if all are), as ``ros2 bag record`` does, and their offered
profiles go into the bag. The log time of a message is its receive time [ns]: the middleware's
reception timestamp (system clock), or the node's clock with ``use_sim_time`` (as rosbag2); the
publish time is the publisher's source timestamp. Once every topic is recorded (each subscription matched
with the publishers the graph lists) or ``max_wait_s`` passed, it says so on ``~/ready`` (std_msgs/String,
the recorded topics; reliable, transient local): replay_node's ``wait_for_recorder`` waits for it, so a
launched pipeline's bag starts with the first frame.

Messages are written through :class:`~ros2_tracker.io.bag.BagWriter`, which writes a chunk at the
latest ``flush_interval_s`` after its first message. On SIGINT or SIGTERM (handlers installed here
instead of rclpy's, which would end the context before the pending messages are taken) the node stops
spinning within 0.1 s, takes what the middleware already received, closes the bag (summary +
``metadata.yaml``) and logs the counts per topic; a second signal skips the draining. A shutdown
from elsewhere (``ExternalShutdownException``) also closes the bag.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.io.bag import BagError, BagWriter, message_class, qos_profile_dict
from ros2_tracker.launching import hangup_ignored
from ros2_tracker.nodes.conversions import SequenceGaps
from ros2_tracker.nodes.params import declare_config
from ros2_tracker.nodes.spinning import drive, latched_qos, run_node

__all__ = ["RecorderConfig", "RecorderNode", "main"]

_DRAIN_MAX_S = 2.0  # after a stop request: longest time spent taking already-received messages


@dataclass(frozen=True)
class RecorderConfig(ConfigBase):
    """Parameters of ``recorder_node``."""

    output: str = param("", "rosbag2 folder to create (<output>/metadata.yaml + <output>/<name>_0.mcap); "
                        "must not exist. Empty: tracks_<namespace>_<YYYY_MM_DD-HH_MM_SS> in the working "
                        "directory, as ros2 bag record names its bags", read_only=True)
    # not read_only: declare_config cannot give an empty read-only list parameter its [] default (the node
    # rejects a change at run time instead)
    topics: list[str] = param([], "Topics to record, read at start (relative names resolve in the "
                              "node's namespace)")
    max_wait_s: float = param(10.0, "Keep looking this long for publishers of topics not yet recorded",
                              low=0.0, high=86400.0, unit="s", read_only=True)
    discovery_period_s: float = param(0.1, "Period of the graph check for missing topics", low=0.01,
                                      high=60.0, unit="s", read_only=True)
    flush_interval_s: float = param(0.5, "A chunk is written at the latest this long after its first "
                                    "message (what an abrupt kill can lose)", low=0.0, high=3600.0, unit="s",
                                    read_only=True)
    compression: str = param("none", "MCAP chunk compression", choices=("none", "zstd", "lz4"),
                             read_only=True)
    queue_depth: int = param(100, "History depth of each subscription", low=1, high=100000, read_only=True)

    def check(self) -> None:
        """``topics`` must be set."""
        if not self.topics:
            raise ConfigError("topics: must list at least one topic (-p topics:=[image,detections])")


def default_bag_name(namespace: str, now: float | None = None) -> str:
    """``tracks_<namespace>_<YYYY_MM_DD-HH_MM_SS>`` (local time; the namespace's parts joined by ``_``, left
    out in the root namespace): two launches, in two namespaces or one after the other, never meet."""
    ns = "_".join(p for p in namespace.split("/") if p)
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(now))
    return f"tracks_{ns}_{stamp}" if ns else f"tracks_{stamp}"


class StopRequest:
    """The recorder's SIGINT/SIGTERM/SIGHUP handler: the first signal asks it to stop (after taking what
    the middleware already received), a second stops at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


class RecorderNode(Node):
    """Records the configured topics (module docstring)."""

    def __init__(self, stop: StopRequest | None = None, **kwargs: Any) -> None:
        self._stop = stop if stop is not None else StopRequest()
        super().__init__("recorder_node", **kwargs)
        self.cfg = declare_config(self, RecorderConfig)
        self.output = self.cfg.output or default_bag_name(self.get_namespace())
        # an invalid topic name (RCLError) before the bag is made: a refused start left an empty bag folder
        # behind, which the next start (topics fixed) refused to overwrite
        self._wanted = {self.resolve_topic_name(t): t for t in self.cfg.topics}
        self.bag = BagWriter(self.output, flush_interval_s=self.cfg.flush_interval_s,
                             compression=self.cfg.compression)  # BagError: output exists
        self._subs: dict[str, Any] = {}
        self._gaps: dict[str, SequenceGaps] = {}  # per topic: messages published but never received
        self._started = time.monotonic()
        self._sim_time = bool(self.get_parameter("use_sim_time").value)
        self.received = 0
        # wall-time timers, as their deadlines are measured: with use_sim_time, ROS-time timers would not run
        # before /clock starts (the recorder starts before the bag player) nor after it ends
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._ready_pub = self.create_publisher(String, "~/ready", latched_qos())
        self._discovery = self.create_timer(self.cfg.discovery_period_s, self._discover, clock=steady)
        self.create_timer(max(self.cfg.flush_interval_s, 0.05), self.bag.flush_if_due, clock=steady)
        self.add_on_set_parameters_callback(self._reject_topics_change)
        self.get_logger().info(f"recording {', '.join(self._wanted)} into {self.output}")

    @staticmethod
    def _reject_topics_change(params: list[Any]) -> SetParametersResult:
        """``topics`` is read at start: a change at run time would be stored and reported as applied while
        the node kept recording the old topics, so it is refused with the reason."""
        if any(p.name == "topics" for p in params):
            return SetParametersResult(successful=False, reason="topics is read at start: start another "
                                                                "recorder to record other topics")
        return SetParametersResult(successful=True)

    def _discover(self) -> None:
        """Subscribe to the wanted topics that appeared in the graph; stop looking, and say ``~/ready``, when
        every subscription has matched its publishers or ``max_wait_s`` passed."""
        types = dict(self.get_topic_names_and_types())
        for topic in [t for t in self._wanted if t not in self._subs and t in types]:
            if self.count_publishers(topic) > 0:  # (a subscriber alone puts a topic in the graph too)
                self._subscribe(topic, types[topic])
        missing = [t for t in self._wanted if t not in self._subs]
        unmatched = [t for t, s in self._subs.items()
                     if s is not None and s.get_publisher_count() < self.count_publishers(t)]
        if not missing and not unmatched:
            self._ready()
        elif time.monotonic() - self._started > self.cfg.max_wait_s:
            if missing:
                self.get_logger().warning(f"not recording {', '.join(missing)}: not in the graph after "
                                          f"{self.cfg.max_wait_s:g} s (max_wait_s)")
            self._ready()

    def _ready(self) -> None:
        self._discovery.cancel()
        recorded = [t for t, s in self._subs.items() if s is not None]
        self._ready_pub.publish(String(data=",".join(recorded)))

    def _subscribe(self, topic: str, type_names: list[str]) -> None:
        msgtype = type_names[0]
        if len(type_names) > 1:
            self.get_logger().warning(f"{topic}: several types in the graph ({', '.join(type_names)}); "
                                      f"recording {msgtype}")
        try:
            cls = message_class(msgtype)
        except BagError as exc:
            self.get_logger().error(f"not recording {topic}: {exc}")
            self._subs[topic] = None
            return
        infos = [i for i in self.get_publishers_info_by_topic(topic) if i.topic_type == msgtype]
        qos = self._subscription_qos([i.qos_profile for i in infos])
        type_hash = next((str(i.topic_type_hash) for i in infos if str(i.topic_type_hash).startswith("RIHS")),
                         "")
        self.bag.add_topic(topic, msgtype, offered_qos_profiles=[_qos_dict(i.qos_profile) for i in infos],
                           type_hash=type_hash)

        gaps = self._gaps[topic] = SequenceGaps()

        def on_message(data: bytes, info: Any, topic: str = topic) -> None:
            self._write(topic, data, info)
            if gaps.add(info):
                self.get_logger().warning(f"{topic}: {gaps.lost} message(s) lost before the recorder took "
                                          f"them (it fell behind: raise queue_depth, {self.cfg.queue_depth})",
                                          throttle_duration_sec=2.0)

        self._subs[topic] = self.create_subscription(cls, topic, on_message, qos, raw=True)
        self.get_logger().info(f"recording {topic} [{msgtype}] ({qos.reliability.name.lower()}, "
                               f"{qos.durability.name.lower()})")

    def _subscription_qos(self, offered: list[Any]) -> QoSProfile:
        best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
        transient = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        durability = DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.cfg.queue_depth,
                          reliability=reliability, durability=durability)

    def _write(self, topic: str, data: bytes, info: Any) -> None:
        if self._sim_time:  # as rosbag2: with use_sim_time the log time is the node's (/clock) time
            received = self.get_clock().now().nanoseconds
        else:
            received = int(info.get("received_timestamp") or 0) or time.time_ns()
        self.bag.write(topic, data, received, int(info.get("source_timestamp") or 0) or None)
        self.received += 1

    @property
    def stop_requested(self) -> bool:
        """Whether SIGINT/SIGTERM (or the owner) asked the recorder to stop."""
        return self._stop.requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._stop.requested = bool(value)

    def spin_until_stopped(self, executor: Any) -> None:
        """Spin until a stop request (SIGINT/SIGTERM) or shutdown, then take what was already received."""
        while not self.stop_requested and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        self.drain(executor)

    def drain(self, executor: Any) -> None:
        """Take the messages the middleware already holds (those ready now), then stop."""
        if not rclpy.ok():
            return
        end = time.monotonic() + _DRAIN_MAX_S
        while time.monotonic() < end:
            before = self.received
            executor.spin_once(timeout_sec=0.0)
            if self.received == before:
                executor.spin_once(timeout_sec=0.0)  # a timer may have run instead: one more look
                if self.received == before:
                    return

    def close(self) -> None:
        """Close the bag and log what was recorded (idempotent)."""
        if self.bag.closed:
            return
        self.bag.close()
        counts = ", ".join(f"{t.name} {t.message_count}" for t in self.bag.topics.values()) or "no topics"
        self.get_logger().info(f"recorded {self.bag.message_count} messages ({counts}) into "
                               f"{self.output}")
        lost = ", ".join(f"{t} {g.lost}" for t, g in self._gaps.items() if g.lost)
        if lost:
            self.get_logger().warning(f"published but never received (the recorder fell behind): {lost}")


def _qos_dict(qos: Any) -> dict[str, Any]:
    """An rclpy QoSProfile as rosbag2's v9 offered_qos_profiles entry."""
    return qos_profile_dict(reliability=qos.reliability.name.lower(), durability=qos.durability.name.lower(),
                            history=qos.history.name.lower(), depth=int(qos.depth),
                            liveliness=qos.liveliness.name.lower())


def main(args: list[str] | None = None) -> int:
    """Run the node; exit status 2 on a configuration error (e.g. the output exists), 0 otherwise."""
    # rclpy's own SIGINT/SIGTERM handlers would shut the context down at once, before the messages the
    # middleware already received are taken: handle both here, and a hangup (a closed terminal), which
    # would kill the process with its bag unclosed (a second signal stops immediately).
    # Installed before the node is built: a signal while it starts (its bag already created) is a stop
    # request like any other, so the bag is closed whole instead of left without its summary.
    stop = StopRequest()
    # (a hangup ignored, under nohup, stays ignored)
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if not hangup_ignored(s)}
    try:
        return run_node(lambda: RecorderNode(stop), "recorder_node", args, fatal="cannot start",
                        errors=(BagError,), signal_handler_options=SignalHandlerOptions.NO,
                        run=lambda node: drive(node, node.spin_until_stopped, after=node.close))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
