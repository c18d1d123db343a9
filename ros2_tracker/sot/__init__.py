"""Single-target tracking: follow one chosen object.

- :mod:`~ros2_tracker.sot.tracker_base`: the backend interface (``init(frame, box)``, ``update(frame)``);
- :mod:`~ros2_tracker.sot.factory`: :class:`SotConfig`, the backend registry and
  :func:`create_follower`;
- :mod:`~ros2_tracker.sot.follower`: :class:`Follower` (tracking / uncertain / lost, cycle-consistency
  check, re-acquisition, predicted trajectory);
- :mod:`~ros2_tracker.sot.nanotrack` (NanoTrack v2, ONNX Runtime), :mod:`~ros2_tracker.sot.opencv_backends`
  (MIL) and the learned backends;
- :mod:`~ros2_tracker.sot.evaluation`: OTB-style targets and metrics.

Nothing heavy is imported here: backends load their runtimes when built.
"""

from ros2_tracker.sot.factory import BACKENDS, SotConfig, create_follower, create_sot_tracker
from ros2_tracker.sot.follower import Follower, FollowerConfig, FollowResult, FollowState
from ros2_tracker.sot.tracker_base import SingleTargetTracker, SotResult

__all__ = [
    "BACKENDS",
    "FollowResult",
    "FollowState",
    "Follower",
    "FollowerConfig",
    "SingleTargetTracker",
    "SotConfig",
    "SotResult",
    "create_follower",
    "create_sot_tracker",
]
