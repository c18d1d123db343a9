"""ROS-free tracking core: boxes, batched Kalman motion, costs, assignment, track lifecycle, tracker.

Imports numpy and scipy only (a test enforces it), so it runs anywhere and is easy to test.
"""

from ros2_tracker.core.assignment import Assignment, assign
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.core.motion import ConstantVelocityPredictor, MotionHistory, TrajectoryPredictor
from ros2_tracker.core.track import TrackSet, TrackState, Trajectories
from ros2_tracker.core.tracker import StampError, Tracker, TrackerConfig, score_scale_warning

__all__ = [
    "Assignment",
    "ConfigBase",
    "ConfigError",
    "ConstantVelocityPredictor",
    "MotionHistory",
    "StampError",
    "TrackSet",
    "TrackState",
    "Tracker",
    "TrackerConfig",
    "Trajectories",
    "TrajectoryPredictor",
    "assign",
    "param",
    "score_scale_warning",
]
