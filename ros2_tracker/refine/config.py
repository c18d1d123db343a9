"""Parameters of the offline refinement of recorded tracks (``ros2_tracker.refine``).

One validated, frozen dataclass; ``config/refine.yaml`` carries the same fields in ROS parameter
form and is read by ``ros2-tracker track --offline --refine-config`` and ``replay --offline``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["RefineConfig"]


@dataclass(frozen=True)
class RefineConfig(ConfigBase):
    """Offline refinement: tracklet linking across gaps, then linear interpolation through gaps.

    A gap is the time between the last box before it and the first box after it:
    ``(frame_after - frame_before) / fps`` [s]; consecutive frames are not a gap.
    """

    link: bool = param(True, "Link tracklets (ids) across gaps into one identity")
    link_without_appearance: bool = param(False, "Also link tracklets that have no appearance embeddings, "
                                          "by motion alone (off: the online tracker already bridged the "
                                          "gaps that constant velocity explains, and motion-only links "
                                          "were measured to add identity errors in crowds)")
    link_max_gap_s: float = param(2.0, "Longest gap across which two tracklets may be linked", low=0.0,
                                  high=3600.0, unit="s")
    velocity_window_s: float = param(0.5, "Velocity of a tracklet end: least-squares fit over the boxes of "
                                     "its last (first) this many seconds", low=0.0, high=60.0, unit="s")
    max_velocity: float = param(2.0, "Fastest plausible motion, in box heights per second: fitted "
                                "velocities are clipped to it (a guard against fits over a few jittery "
                                "boxes) and gaps crossed faster are not interpolated", low=0.0,
                                high=100.0, unit="box heights/s")
    motion_gate: float = param(0.3, "Largest motion error at zero gap: distance between a tracklet end "
                               "extrapolated to the other tracklet's start and that start, in box "
                               "heights", low=0.0, high=100.0, unit="box heights")
    motion_gate_per_s: float = param(0.3, "Allowed motion error grows by this much per second of gap "
                                     "(constant-velocity uncertainty)", low=0.0, high=100.0,
                                     unit="box heights/s")
    max_height_ratio: float = param(1.5, "Largest ratio between the heights of the boxes at the two "
                                    "ends of a link or of an interpolated gap", low=1.0, high=100.0)
    appearance_gate: float = param(0.25, "Largest cosine distance between the tracklets' mean "
                                   "embeddings", low=0.01, high=2.0)
    appearance_weight: float = param(0.5, "Weight of the appearance cost in the fused link cost "
                                     "(the rest is motion); both are normalised by their gates",
                                     low=0.0, high=1.0)
    min_tracklet_boxes: int = param(1, "Tracklets with fewer boxes are never linked", low=1, high=100000)
    interpolate: bool = param(True, "Fill gaps within an identity by linear interpolation of centre and "
                              "size")
    max_gap_s: float = param(1.0, "Longest gap that is interpolated", low=0.0, high=3600.0, unit="s")

    def check(self) -> None:
        """Cross-field checks."""
        if self.link and self.motion_gate == 0.0 and self.motion_gate_per_s == 0.0:
            raise ConfigError("motion_gate and motion_gate_per_s are both 0: no link could ever pass the "
                              "motion gate (set link: false to disable linking)")
