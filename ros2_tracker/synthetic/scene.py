"""Deterministic synthetic pedestrian scene: ground truth, noisy detections and a MOTChallenge writer.

The scene is a street seen by a fixed pinhole camera above a flat ground plane. People walk on the
ground in metres (X lateral, Z depth), so perspective follows by construction: a person lower in
the image is nearer and bigger. The camera is chosen so that a 1.72 m person spans
``max_box_height`` px at the nearest walkable depth and ``min_box_height`` px at the farthest.

What makes it a tracking problem:

* ``num_objects`` people are in the scene at any time; one who walks out of the image is replaced,
  after a pause, by a new identity entering from a side edge (so identities enter and leave).
* People walk mostly across the image, in both directions and at different depths, so paths cross
  and nearer people fully occlude farther ones. Headings wander (Ornstein-Uhlenbeck around a base
  heading) and people stop now and then, so constant velocity is only an approximation.
* An optional static occluder (a pillar standing on the ground) hides everyone walking behind it
  for one to two seconds.
* Detections come from a noise model: bursty misses (a two-state Markov chain per person whose
  long-run miss fraction is ``miss_rate``), a detection probability that falls to zero as the
  visible fraction drops, box jitter relative to box height, boxes that shrink towards the visible
  part of occluded people, boxes clipped to the image, scores that are high for visible people,
  lower for occluded ones and low (mostly) for false positives, and Poisson false positives.

Visibility is the fraction of a person's box that is inside the image and not covered by the box of
a nearer person or by the occluder (sampled on a 16x8 grid). ``Scene.write_mot`` writes ground
truth rows only for visibility >= ``gt_min_visibility`` (MOT15 style, no visibility column).

Randomness: one ``numpy.random.SeedSequence`` from ``seed`` is split into independent streams for
motion, detection noise and rendering, so changing a detection-noise parameter leaves the motion
unchanged, and ``render=False`` leaves ground truth and detections unchanged. No global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.io.mot import MotRows, write_results

__all__ = [
    "Detections",
    "GroundCamera",
    "GroundTruth",
    "Scene",
    "SceneConfig",
    "Trajectory",
    "generate_scene",
]

NOMINAL_PERSON_HEIGHT_M = 1.72
_STRIDE_M = 1.4  # one full gait cycle (two steps) [m], drives the leg swing of the rendering
_OU_TIME_CONSTANT_S = 3.0  # how fast a wandering heading returns to the person's base heading
_SCORE_CONCENTRATION = (12.0, 6.0)  # Beta concentration of true / false-positive scores
_GRID = (16, 8)  # rows, columns of the visibility sampling grid


@dataclass(frozen=True)
class SceneConfig(ConfigBase):
    """Parameters of :func:`generate_scene` (defaults give a moderately hard 20 s scene at 10 Hz)."""

    seed: int = param(0, "Seed of every random stream of the scene", low=0, high=2**63 - 1)
    name: str = param("", "Sequence name written to seqinfo.ini; 'synthetic-<seed>' when empty")
    num_frames: int = param(200, "Number of frames", low=1, high=1_000_000)
    fps: float = param(10.0, "Frame rate", low=0.1, high=1000.0, unit="Hz")
    width: int = param(640, "Image width", low=64, high=8192, unit="px")
    height: int = param(480, "Image height", low=64, high=8192, unit="px")
    num_objects: int = param(8, "People in the scene at any time (one who leaves is replaced by a "
                             "new identity after a pause)", low=0, high=500)
    min_box_height: float = param(80.0, "Box height of a 1.72 m person at the farthest walkable "
                                  "depth", low=4.0, unit="px")
    max_box_height: float = param(200.0, "Box height of a 1.72 m person at the nearest walkable "
                                  "depth", low=4.0, unit="px")
    aspect_ratio: float = param(0.41, "Mean box width / height of a person", low=0.1, high=2.0)
    min_speed: float = param(0.5, "Slowest walking speed", low=0.0, high=20.0, unit="m/s")
    max_speed: float = param(1.8, "Fastest walking speed", low=0.0, high=20.0, unit="m/s")
    heading_noise: float = param(0.3, "Random-walk density of the walking direction",
                                 low=0.0, high=10.0, unit="rad/s^0.5")
    stop_rate: float = param(0.05, "Rate at which a walking person stops", low=0.0, high=10.0,
                             unit="1/s")
    mean_stop_s: float = param(2.0, "Mean duration of a stop", low=0.0, high=600.0, unit="s")
    mean_respawn_delay_s: float = param(1.0, "Mean pause before a person who left is replaced",
                                        low=0.0, high=600.0, unit="s")
    occluder: bool = param(True, "Place a static pillar that hides people walking behind it")
    occluder_x: float = param(0.5, "Pillar centre, as a fraction of the image width", low=0.0,
                              high=1.0)
    occluder_width: float = param(64.0, "Pillar width", low=1.0, unit="px")
    occluder_depth: float = param(0.45, "Where the pillar stands between the farthest (0) and the "
                                  "nearest (1) walkable image row", low=0.0, high=1.0)
    miss_rate: float = param(0.08, "Long-run fraction of fully visible people the detector misses",
                             low=0.0, high=0.99)
    miss_burst_frames: float = param(2.0, "Mean length of a run of consecutive misses", low=1.0,
                                     high=1000.0, unit="frames")
    false_positives_per_frame: float = param(0.5, "Mean number of false-positive detections per "
                                             "frame (Poisson)", low=0.0, high=100.0)
    box_jitter: float = param(0.04, "Standard deviation of detection box noise (centre: relative to "
                              "box height; size: relative log-scale)", low=0.0, high=1.0)
    occluded_box_shrink: float = param(0.5, "How far an occluded person's detection box moves from "
                                       "the full box towards the box of its visible part", low=0.0,
                                       high=1.0)
    min_detect_visibility: float = param(0.2, "People less visible than this are never detected",
                                         low=0.0, high=1.0)
    full_detect_visibility: float = param(0.6, "People at least this visible are detected with "
                                          "probability 1 - miss_rate and full score", low=0.0,
                                          high=1.0)
    true_score_mean: float = param(0.85, "Mean score of a detection of a fully visible person",
                                   low=0.01, high=0.99)
    false_positive_score_mean: float = param(0.3, "Mean score of a false positive", low=0.01,
                                             high=0.99)
    gt_min_visibility: float = param(0.25, "Ground-truth rows are written for people at least this "
                                     "visible", low=0.0, high=1.0)
    image_noise: float = param(3.0, "Standard deviation of the rendered images' pixel noise",
                               low=0.0, high=64.0, unit="grey levels")

    def check(self) -> None:
        """Cross-field validation."""
        if self.min_box_height >= self.max_box_height:
            raise ConfigError(f"min_box_height: {self.min_box_height} must be below max_box_height "
                              f"({self.max_box_height})")
        if self.max_box_height > 0.6 * self.height:
            raise ConfigError(f"max_box_height: {self.max_box_height} px does not fit the ground "
                              f"below the horizon of a {self.height} px image (at most 60%)")
        if self.min_speed > self.max_speed:
            raise ConfigError(f"min_speed: {self.min_speed} must not exceed max_speed "
                              f"({self.max_speed})")
        if self.min_detect_visibility >= self.full_detect_visibility:
            raise ConfigError(f"min_detect_visibility: {self.min_detect_visibility} must be below "
                              f"full_detect_visibility ({self.full_detect_visibility})")
        if self.miss_rate > self.miss_burst_frames / (self.miss_burst_frames + 1):  # hit runs last >= 1 frame
            raise ConfigError(f"miss_rate: {self.miss_rate} cannot be reached with runs of "
                              f"{self.miss_burst_frames:g} misses (at most {self.miss_burst_frames:g} missed "
                              f"per {self.miss_burst_frames + 1:g} frames); raise miss_burst_frames to "
                              f"{self.miss_rate / (1 - self.miss_rate):.3g} or more")
        if self.occluder_width >= self.width:
            raise ConfigError(f"occluder_width: {self.occluder_width} px must be narrower than the "
                              f"image ({self.width} px)")

    @property
    def sequence_name(self) -> str:
        """``name``, or ``synthetic-<seed>`` when empty."""
        return self.name or f"synthetic-{self.seed}"


@dataclass(frozen=True)
class GroundCamera:
    """Pinhole camera with zero roll and pitch at ``camera_height_m`` above a flat ground.

    A ground point (X lateral, Z depth) [m] projects to ``u = cx + f X / Z`` and
    ``v = horizon_y + f camera_height_m / Z`` [px].
    """

    focal_px: float
    cx: float
    horizon_y: float
    camera_height_m: float

    def foot_row(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Image row [px] of ground points at depth ``depth_m`` [m]."""
        return self.horizon_y + self.focal_px * self.camera_height_m / np.asarray(depth_m)

    def depth_of_row(self, row_px: np.ndarray | float) -> np.ndarray:
        """Depth [m] of the ground seen at image row ``row_px`` (must be below the horizon)."""
        return self.focal_px * self.camera_height_m / (np.asarray(row_px) - self.horizon_y)

    def boxes_tlwh(self, ground_xz: np.ndarray, heights_m: np.ndarray,
                   aspect: np.ndarray) -> np.ndarray:
        """(N,4) tlwh boxes [px] of people standing at (N,2) ground points with the given heights [m]."""
        xz = np.asarray(ground_xz, dtype=np.float64).reshape(-1, 2)
        scale = self.focal_px / xz[:, 1]
        h = np.asarray(heights_m) * scale
        w = np.asarray(aspect) * h
        u = self.cx + xz[:, 0] * scale
        foot = self.foot_row(xz[:, 1])
        return np.stack([u - 0.5 * w, foot - h, w, h], axis=1)

    def image_to_ground(self) -> np.ndarray:
        """3x3 homography from image points (u, v) [px] on the ground to (X, Z) [m] (row major).

        Suitable for ``TrackerConfig.ground_homography`` (apply to box bottom centres).
        """
        hc = self.camera_height_m
        return np.array([[hc, 0.0, -hc * self.cx],
                         [0.0, 0.0, self.focal_px * hc],
                         [0.0, 1.0, -self.horizon_y]])


class GroundTruth(NamedTuple):
    """Every person in every frame where their box overlaps the image (M rows, sorted by frame, id).

    Attributes:
        frames: (M,) int frame numbers, from 1.
        ids: (M,) int identities, from 1, never reused.
        boxes_tlwh: (M, 4) full (unoccluded, unclipped) boxes [px].
        visibility: (M,) visible fraction of the box in [0, 1] (occlusion and image border).
        ground_xz: (M, 2) foot position on the ground (X lateral, Z depth) [m].
        walk_phase: (M,) gait phase [rad] (the renderer swings legs with it).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    visibility: np.ndarray
    ground_xz: np.ndarray
    walk_phase: np.ndarray


class Detections(NamedTuple):
    """Simulated detector output (D rows, sorted by frame, then by descending score).

    Attributes:
        frames: (D,) int frame numbers, from 1.
        boxes_tlwh: (D, 4) boxes [px], clipped to the image.
        scores: (D,) confidences in (0, 1).
        source_ids: (D,) identity the detection came from, -1 for false positives.
    """

    frames: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    source_ids: np.ndarray


class Trajectory(NamedTuple):
    """One identity's true motion over consecutive frames (T of them).

    Attributes:
        frames: (T,) consecutive frame numbers.
        times_s: (T,) stamps ``(frame - 1) / fps`` [s].
        centres: (T, 2) box centres [px].
        boxes_tlwh: (T, 4) full boxes [px].
        visibility: (T,) visible fraction.
        ground_xz: (T, 2) foot position on the ground [m].
    """

    frames: np.ndarray
    times_s: np.ndarray
    centres: np.ndarray
    boxes_tlwh: np.ndarray
    visibility: np.ndarray
    ground_xz: np.ndarray


@dataclass(frozen=True, eq=False)
class Scene:
    """A generated scene (see :func:`generate_scene`).

    Attributes:
        config: the parameters it was generated from.
        camera: the camera model.
        gt: every person in every frame, occluded ones included.
        detections: the simulated detector output.
        occluder_xyxy: (4,) pillar box [px] (top at row 0, bottom where it stands), None without.
        occluder_depth_m: depth of the pillar [m] (inf without).
    """

    config: SceneConfig
    camera: GroundCamera
    gt: GroundTruth
    detections: Detections
    occluder_xyxy: np.ndarray | None
    occluder_depth_m: float
    _frame_starts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (f"Scene({self.config.sequence_name}: {self.num_frames} frames, "
                f"{len(np.unique(self.gt.ids))} identities, {len(self.gt.frames)} gt rows, "
                f"{len(self.detections.frames)} detections)")

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return self.config.num_frames

    def _rows_of(self, which: str, frame: int) -> slice:
        frames = self.gt.frames if which == "gt" else self.detections.frames
        starts = self._frame_starts.get(which)
        if starts is None:
            starts = np.searchsorted(frames, np.arange(1, self.num_frames + 2))
            self._frame_starts[which] = starts
        if not 1 <= frame <= self.num_frames:
            raise IndexError(f"frame {frame} is outside 1..{self.num_frames}")
        return slice(int(starts[frame - 1]), int(starts[frame]))

    def frame_gt(self, frame: int) -> GroundTruth:
        """Ground-truth rows of one frame (1-based), occluded people included."""
        s = self._rows_of("gt", frame)
        return GroundTruth(*(a[s] for a in self.gt))

    def frame_detections(self, frame: int) -> Detections:
        """Detections of one frame (1-based)."""
        s = self._rows_of("det", frame)
        return Detections(*(a[s] for a in self.detections))

    def gt_visible_mask(self, min_visibility: float | None = None) -> np.ndarray:
        """(M,) bool: gt rows at least ``min_visibility`` visible (config's ``gt_min_visibility``)."""
        v = self.config.gt_min_visibility if min_visibility is None else min_visibility
        return self.gt.visibility >= v

    def gt_rows(self, min_visibility: float | None = None) -> MotRows:
        """Ground truth as :class:`MotRows` (the rows :meth:`write_mot` writes to ``gt/gt.txt``)."""
        m = self.gt_visible_mask(min_visibility)
        n = int(m.sum())
        return MotRows(self.gt.frames[m].copy(), self.gt.ids[m].copy(), self.gt.boxes_tlwh[m].copy(),
                       np.ones(n), np.full((n, 3), -1.0))

    def detection_rows(self) -> MotRows:
        """Detections as :class:`MotRows` (id -1), ready for ``offline.track_mot_detections``."""
        d = self.detections
        n = len(d.frames)
        return MotRows(d.frames.copy(), np.full(n, -1, dtype=np.int64), d.boxes_tlwh.copy(),
                       d.scores.copy(), np.full((n, 3), -1.0))

    def trajectories(self) -> dict[int, Trajectory]:
        """Per-identity true motion (all frames where the box overlaps the image), keyed by id."""
        out: dict[int, Trajectory] = {}
        order = np.lexsort((self.gt.frames, self.gt.ids))
        ids = self.gt.ids[order]
        cuts = np.flatnonzero(np.diff(ids)) + 1
        for rows in np.split(order, cuts):
            if not len(rows):
                continue
            b = self.gt.boxes_tlwh[rows]
            f = self.gt.frames[rows]
            out[int(self.gt.ids[rows[0]])] = Trajectory(
                frames=f, times_s=(f - 1) / self.config.fps, centres=b[:, :2] + 0.5 * b[:, 2:],
                boxes_tlwh=b, visibility=self.gt.visibility[rows], ground_xz=self.gt.ground_xz[rows])
        return out

    def render_frame(self, frame: int) -> np.ndarray:
        """The (H, W, 3) uint8 BGR image of one frame (1-based). Needs OpenCV."""
        from ros2_tracker.synthetic.render import SceneRenderer

        return SceneRenderer(self).render(frame)

    def write_mot(self, folder: str | Path, *, render: bool = True, jpeg_quality: int = 90,
                  progress: Callable[[int], None] | None = None) -> Path:
        """Write a MOTChallenge sequence folder and return its path.

        Writes ``seqinfo.ini``, ``gt/gt.txt`` (``frame,id,x,y,w,h,1,-1,-1,-1`` for people at least
        ``gt_min_visibility`` visible), ``det/det.txt`` (``frame,-1,x,y,w,h,score,-1,-1,-1``) and,
        with ``render``, ``img1/000001.jpg`` ... (needs OpenCV). Existing files are overwritten.

        Args:
            folder: the sequence folder (created with its parents).
            render: also render and write the frames.
            jpeg_quality: JPEG quality of the frames, 1..100.
            progress: called with each frame number after it is written.
        """
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        c = self.config
        (root / "seqinfo.ini").write_text(
            "[Sequence]\n"
            f"name={c.sequence_name}\nimDir=img1\nframeRate={c.fps:g}\nseqLength={c.num_frames}\n"
            f"imWidth={c.width}\nimHeight={c.height}\nimExt=.jpg\n")
        g = self.gt_rows()
        write_results(root / "gt" / "gt.txt", g.frames, g.ids, g.boxes_tlwh, g.scores)
        d = self.detections
        write_results(root / "det" / "det.txt", d.frames, np.full(len(d.frames), -1), d.boxes_tlwh,
                      d.scores)
        if render:
            from ros2_tracker.synthetic.render import write_frames

            write_frames(self, root / "img1", jpeg_quality=jpeg_quality, progress=progress)
        return root


# ---------------------------------------------------------------------------------------- camera
def make_camera(config: SceneConfig) -> GroundCamera:
    """The camera implied by the image size and the near/far box heights of ``config``.

    The horizon sits at 30% of the image height and the nearest walkable foot row at 97%; the
    focal length is 0.8 image widths (about 64 degrees horizontal field of view).
    """
    f = 0.8 * config.width
    horizon = 0.30 * config.height
    near_row = 0.97 * config.height
    near_depth = f * NOMINAL_PERSON_HEIGHT_M / config.max_box_height
    return GroundCamera(focal_px=f, cx=0.5 * config.width, horizon_y=horizon,
                        camera_height_m=(near_row - horizon) * near_depth / f)


def _depth_limits(config: SceneConfig, camera: GroundCamera, heights_m: np.ndarray):
    """Per-person walkable depth range [m] so that box heights stay within the configured range."""
    return (camera.focal_px * heights_m / config.max_box_height,
            camera.focal_px * heights_m / config.min_box_height)


# ---------------------------------------------------------------------------------------- motion
@dataclass
class _Walker:
    """Mutable state of one person while the motion is simulated."""

    pid: int
    height_m: float
    aspect: float
    z_min: float
    z_max: float
    x: float
    z: float
    base_heading: float
    heading: float
    speed: float
    phase: float
    stop_left_s: float = 0.0
    entered: bool = False
    outside_s: float = 0.0


class _Population:
    """Simulates walkers slot by slot; a slot whose walker left is refilled after a pause."""

    def __init__(self, config: SceneConfig, camera: GroundCamera, rng: np.random.Generator) -> None:
        self.c, self.cam, self.rng = config, camera, rng
        self.dt = 1.0 / config.fps
        self.next_id = 1
        self.slots: list[_Walker | None] = [self._spawn(inside=True) for _ in range(config.num_objects)]
        self.wait_s = [0.0] * config.num_objects

    def _spawn(self, *, inside: bool) -> _Walker:
        c, cam, rng = self.c, self.cam, self.rng
        height = float(np.clip(rng.normal(NOMINAL_PERSON_HEIGHT_M, 0.07), 1.5, 1.95))
        aspect = float(np.clip(rng.normal(c.aspect_ratio, 0.03), 0.5 * c.aspect_ratio, 1.5 * c.aspect_ratio))
        z_min, z_max = _depth_limits(c, cam, np.array(height))
        rows = cam.foot_row(np.array([z_max, z_min]))
        z = float(cam.depth_of_row(rng.uniform(rows[0], rows[1])))
        rightward = rng.random() < 0.5
        base = (0.0 if rightward else math.pi) + rng.uniform(-0.45, 0.45) * (1 if rightward else -1)
        half_w = 0.5 * aspect * height  # [m]
        if inside:
            u = rng.uniform(0.03, 0.97) * c.width
            x = (u - cam.cx) * z / cam.focal_px
        else:  # just outside the side edge it walks in from
            edge_u = -1.0 if rightward else c.width + 1.0
            x = (edge_u - cam.cx) * z / cam.focal_px + (-half_w if rightward else half_w)
        w = _Walker(pid=self.next_id, height_m=height, aspect=aspect, z_min=float(z_min),
                    z_max=float(z_max), x=float(x), z=z, base_heading=base, heading=base,
                    speed=float(rng.uniform(c.min_speed, c.max_speed)),
                    phase=float(rng.uniform(0, 2 * math.pi)), entered=inside)
        self.next_id += 1
        return w

    def step(self) -> list[_Walker]:
        """Advance every slot by one frame; return the walkers whose box overlaps the image."""
        shown = []
        for k, w in enumerate(self.slots):
            if w is None:
                self.wait_s[k] -= self.dt
                if self.wait_s[k] > 0:
                    continue
                w = self.slots[k] = self._spawn(inside=False)
            self._move(w)
            if self._overlaps_image(w):
                w.entered, w.outside_s = True, 0.0
                shown.append(w)
            else:
                w.outside_s += self.dt
                if w.entered or w.outside_s > 5.0:
                    self.slots[k] = None
                    self.wait_s[k] = float(self.rng.exponential(self.c.mean_respawn_delay_s))
        return shown

    def _move(self, w: _Walker) -> None:
        c, rng, dt = self.c, self.rng, self.dt
        if w.stop_left_s > 0:
            w.stop_left_s -= dt
            return
        if rng.random() < c.stop_rate * dt:
            w.stop_left_s = float(rng.exponential(c.mean_stop_s))
        w.heading += (-(w.heading - w.base_heading) * dt / _OU_TIME_CONSTANT_S
                      + c.heading_noise * math.sqrt(dt) * rng.normal())
        step = w.speed * dt
        w.x += step * math.cos(w.heading)
        w.z += step * math.sin(w.heading)
        if not w.z_min <= w.z <= w.z_max:  # reflect off the walkable depth band
            w.z = float(np.clip(2 * np.clip(w.z, w.z_min, w.z_max) - w.z, w.z_min, w.z_max))
            w.heading, w.base_heading = -w.heading, -w.base_heading
        w.phase = (w.phase + 2 * math.pi * step / _STRIDE_M) % (2 * math.pi)

    def _overlaps_image(self, w: _Walker) -> bool:
        b = self.cam.boxes_tlwh(np.array([[w.x, w.z]]), np.array([w.height_m]), np.array([w.aspect]))[0]
        return b[0] + b[2] > 0 and b[0] < self.c.width


def _simulate_motion(config: SceneConfig, camera: GroundCamera, rng: np.random.Generator):
    """Per-frame walker records: (frames, ids, ground_xz, heights_m, aspects, phases)."""
    pop = _Population(config, camera, rng)
    rec: list[tuple[int, int, float, float, float, float, float]] = []
    for frame in range(1, config.num_frames + 1):
        for w in pop.step():
            rec.append((frame, w.pid, w.x, w.z, w.height_m, w.aspect, w.phase))
    if not rec:
        e = np.empty(0)
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 2)), e, e, e
    a = np.asarray(rec, dtype=np.float64)
    order = np.lexsort((a[:, 1], a[:, 0]))
    a = a[order]
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:4], a[:, 4], a[:, 5], a[:, 6]


# ------------------------------------------------------------------------------------ visibility
def visibility(boxes_xyxy: np.ndarray, depths: np.ndarray, blockers_xyxy: np.ndarray,
               blocker_depths: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Visible fraction of each box and the box of its visible part.

    A point of a box is hidden when it is outside the image or inside a blocker that is strictly
    nearer. Points are sampled on a 16x8 grid per box.

    Args:
        boxes_xyxy: (P, 4) boxes [px].
        depths: (P,) their depths [m].
        blockers_xyxy: (B, 4) boxes that can hide others [px] (usually the same people plus occluders).
        blocker_depths: (B,) their depths [m].
        width: image width [px].
        height: image height [px].

    Returns:
        (P,) visible fractions in [0, 1] and (P, 4) xyxy boxes of the visible points (NaN when
        nothing is visible).
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    gr, gc = _GRID
    fy = (np.arange(gr) + 0.5) / gr
    fx = (np.arange(gc) + 0.5) / gc
    px = b[:, 0, None, None] + (b[:, 2] - b[:, 0])[:, None, None] * fx[None, None, :]
    py = b[:, 1, None, None] + (b[:, 3] - b[:, 1])[:, None, None] * fy[None, :, None]
    px, py = np.broadcast_arrays(px, py)  # (P, gr, gc)
    hidden = (px < 0) | (px >= width) | (py < 0) | (py >= height)
    k = np.asarray(blockers_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(k):
        kk = k[None, :, None, None, :]
        inside = ((px[:, None] >= kk[..., 0]) & (px[:, None] < kk[..., 2])
                  & (py[:, None] >= kk[..., 1]) & (py[:, None] < kk[..., 3]))
        nearer = np.asarray(blocker_depths)[None, :] < np.asarray(depths)[:, None]  # (P, B)
        hidden |= (inside & nearer[:, :, None, None]).any(axis=1)
    seen = ~hidden
    vis = seen.mean(axis=(1, 2))
    half = np.stack([(b[:, 2] - b[:, 0]) / (2 * gc), (b[:, 3] - b[:, 1]) / (2 * gr)], axis=1)
    big = np.inf
    vis_box = np.stack([np.where(seen, px, big).min(axis=(1, 2)) - half[:, 0],
                        np.where(seen, py, big).min(axis=(1, 2)) - half[:, 1],
                        np.where(seen, px, -big).max(axis=(1, 2)) + half[:, 0],
                        np.where(seen, py, -big).max(axis=(1, 2)) + half[:, 1]], axis=1)
    vis_box[vis == 0] = np.nan
    return vis, vis_box


def _frame_visibility(boxes_tlwh, depths, frames, occluder_xyxy, occluder_depth, config):
    """Visibility and visible boxes of all gt rows, frame by frame."""
    xyxy = boxes_tlwh.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    vis = np.zeros(len(frames))
    vis_box = np.full((len(frames), 4), np.nan)
    starts = np.searchsorted(frames, np.arange(1, config.num_frames + 2))
    occ = np.empty((0, 4)) if occluder_xyxy is None else occluder_xyxy[None]
    occ_d = np.empty(0) if occluder_xyxy is None else np.array([occluder_depth])
    for k in range(config.num_frames):
        s = slice(starts[k], starts[k + 1])
        if s.start == s.stop:
            continue
        vis[s], vis_box[s] = visibility(xyxy[s], depths[s], np.concatenate([xyxy[s], occ]),
                                        np.concatenate([depths[s], occ_d]), config.width, config.height)
    return vis, vis_box


# ------------------------------------------------------------------------------------- detection
def _beta(rng: np.random.Generator, mean: float, concentration: float, size: int) -> np.ndarray:
    return rng.beta(mean * concentration, (1.0 - mean) * concentration, size)


def _miss_chain(config: SceneConfig, ids: np.ndarray, frames: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """(M,) bool: the detector's miss state of each gt row (two-state Markov chain per identity)."""
    m, burst = config.miss_rate, config.miss_burst_frames
    p_stay_missed = 1.0 - 1.0 / burst
    p_start_miss = min(1.0, m / ((1.0 - m) * burst))
    u = rng.random(len(ids))
    missed = np.zeros(len(ids), dtype=bool)
    state: dict[int, bool] = {}
    for i in np.lexsort((frames, ids)):
        pid = int(ids[i])
        prev = state.get(pid)
        now = (u[i] < m) if prev is None else (u[i] < (p_stay_missed if prev else p_start_miss))
        state[pid] = missed[i] = bool(now)
    return missed


def _true_detections(config: SceneConfig, gt_boxes: np.ndarray, vis: np.ndarray, vis_box: np.ndarray,
                     missed: np.ndarray, rng: np.random.Generator):
    """Detections of the gt rows: (row indices, tlwh boxes, scores), boxes not yet clipped."""
    q = np.clip((vis - config.min_detect_visibility)
                / (config.full_detect_visibility - config.min_detect_visibility), 0.0, 1.0)
    detected = (rng.random(len(vis)) < q) & ~missed
    rows = np.flatnonzero(detected)
    full = gt_boxes[rows].copy()
    full[:, 2:] += full[:, :2]
    vb = vis_box[rows]
    shrink = config.occluded_box_shrink * (vis[rows] < 1.0)
    xyxy = full + shrink[:, None] * (np.nan_to_num(vb, nan=0.0) - full)
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    sigma = config.box_jitter * (2.0 - q[rows])  # occluded boxes are noisier
    noise = rng.normal(size=(len(rows), 4)) * sigma[:, None]
    cx = 0.5 * (xyxy[:, 0] + xyxy[:, 2]) + noise[:, 0] * gt_boxes[rows, 3]
    cy = 0.5 * (xyxy[:, 1] + xyxy[:, 3]) + noise[:, 1] * gt_boxes[rows, 3]
    w, h = w * np.exp(noise[:, 2]), h * np.exp(noise[:, 3])
    boxes = np.stack([cx - 0.5 * w, cy - 0.5 * h, w, h], axis=1)
    scores = _beta(rng, config.true_score_mean, _SCORE_CONCENTRATION[0], len(rows))
    scores *= 0.3 + 0.7 * q[rows]
    return rows, boxes, scores


def _false_positives(config: SceneConfig, camera: GroundCamera, rng: np.random.Generator):
    """Person-sized false positives: (frames, tlwh boxes, scores)."""
    counts = rng.poisson(config.false_positives_per_frame, config.num_frames)
    n = int(counts.sum())
    frames = np.repeat(np.arange(1, config.num_frames + 1), counts)
    z_min, z_max = _depth_limits(config, camera, np.array(NOMINAL_PERSON_HEIGHT_M))
    foot = rng.uniform(camera.foot_row(z_max), camera.foot_row(z_min), n)
    h = (foot - camera.horizon_y) * NOMINAL_PERSON_HEIGHT_M / camera.camera_height_m
    h *= rng.uniform(0.6, 1.2, n)
    w = h * config.aspect_ratio * rng.uniform(0.7, 1.4, n)
    cx = rng.uniform(0.0, config.width, n)
    boxes = np.stack([cx - 0.5 * w, foot - h, w, h], axis=1)
    scores = _beta(rng, config.false_positive_score_mean, _SCORE_CONCENTRATION[1], n)
    return frames, boxes, scores


def _clip_tlwh(boxes: np.ndarray, width: int, height: int, min_size: float = 4.0):
    """Clip tlwh boxes to the image; also return a mask of those still at least ``min_size`` px."""
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    out = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return out, (out[:, 2] >= min_size) & (out[:, 3] >= min_size)


def _simulate_detections(config: SceneConfig, camera: GroundCamera, gt: GroundTruth,
                         vis_box: np.ndarray, rng: np.random.Generator) -> Detections:
    missed = _miss_chain(config, gt.ids, gt.frames, rng)
    rows, t_boxes, t_scores = _true_detections(config, gt.boxes_tlwh, gt.visibility, vis_box, missed, rng)
    f_frames, f_boxes, f_scores = _false_positives(config, camera, rng)
    frames = np.concatenate([gt.frames[rows], f_frames]).astype(np.int64)
    boxes, ok = _clip_tlwh(np.concatenate([t_boxes, f_boxes]), config.width, config.height)
    scores = np.clip(np.concatenate([t_scores, f_scores]), 1e-3, 0.999)
    source = np.concatenate([gt.ids[rows], np.full(len(f_frames), -1)]).astype(np.int64)
    order = np.lexsort((-scores, frames))
    order = order[ok[order]]
    return Detections(frames[order], boxes[order], scores[order], source[order])


# ---------------------------------------------------------------------------------------- public
def random_streams(seed: int) -> tuple[np.random.SeedSequence, ...]:
    """The independent seed sequences of a scene: (motion, detection noise, rendering)."""
    return tuple(np.random.SeedSequence(seed).spawn(3))


def _occluder(config: SceneConfig, camera: GroundCamera) -> tuple[np.ndarray | None, float]:
    if not config.occluder:
        return None, math.inf
    z_min, z_max = _depth_limits(config, camera, np.array(NOMINAL_PERSON_HEIGHT_M))
    far_row, near_row = camera.foot_row(z_max), camera.foot_row(z_min)
    row = float(far_row + config.occluder_depth * (near_row - far_row))
    u = config.occluder_x * config.width
    half = 0.5 * config.occluder_width
    return np.array([u - half, 0.0, u + half, row]), float(camera.depth_of_row(row))


def generate_scene(config: SceneConfig | None = None) -> Scene:
    """Generate a scene: true motion, visibility and detections. Deterministic in ``config``.

    Takes a few milliseconds per frame (no rendering; see :meth:`Scene.write_mot`).
    """
    c = config or SceneConfig()
    motion_seq, det_seq, _ = random_streams(c.seed)
    camera = make_camera(c)
    frames, ids, xz, heights, aspects, phases = _simulate_motion(c, camera, np.random.default_rng(motion_seq))
    boxes = camera.boxes_tlwh(xz, heights, aspects) if len(frames) else np.empty((0, 4))
    occ_xyxy, occ_depth = _occluder(c, camera)
    vis, vis_box = _frame_visibility(boxes, xz[:, 1], frames, occ_xyxy, occ_depth, c)
    gt = GroundTruth(frames, ids, boxes, vis, xz, phases)
    dets = _simulate_detections(c, camera, gt, vis_box, np.random.default_rng(det_seq))
    return Scene(config=c, camera=camera, gt=gt, detections=dets, occluder_xyxy=occ_xyxy,
                 occluder_depth_m=occ_depth)
