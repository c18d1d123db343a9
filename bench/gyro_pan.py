"""A turning camera, with and without a gyro: the dev sequences seen by a camera that yaws back and forth.

    .venv/bin/python bench/gyro_pan.py [--rates 30 60 90] [--datasets KEY ...] [--seed N] [--lens K1]
                                       [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

The ground truth here is of static cameras; a robot's camera turns with its base or its pan-tilt head. Every
box of frame ``f`` (detections and ground truth alike, real ones) is mapped through the homography
``K R(t)^T K^-1`` of a camera that yaws back and forth sinusoidally (+-20 deg, peak rate ``rate`` deg/s, a
scanning head) and shakes a little in tilt (0.5 deg, period 1.3 s), with ``K`` from seqinfo.ini's image size
and a 60 deg horizontal field of view; a box becomes the bounding box of its mapped corners, and is dropped
(detection and ground truth alike) where its centre leaves the image: the camera no longer sees it. The
people's own motion, the detector's errors and the annotation stay as recorded.

A simulated gyro samples the camera's angular velocity at 200 Hz with white noise of 0.3 deg/s rms (a MEMS
gyro's); the "biased" row adds a constant 1 deg/s bias on every axis (an uncalibrated one). With it, ours
gets the rotation between two frames' stamps from :class:`ros2_tracker.cmc.gyro.GyroBuffer` and
``Tracker.apply_camera_motion(rotation_homography(K, R))`` before each update, as ``tracker_node`` does with
``use_imu``. Rows: ours with the defaults (no gyro: the detections' common motion, ``camera_motion_gain``
0.5), ours without any compensation (gain 0), ours + gyro, ours + biased gyro. HOTA / IDF1 by TrackEval,
per sequence and speed, between ``<!-- bench:gyro_pan:start/end -->`` in BENCHMARKS.md.

``--lens K1``: a wide-angle camera with barrel (K1 < 0) or pincushion distortion (plumb_bob, k2 = -K1 / 3):
every mapped corner is also taken through the lens before its bounding box is drawn. Rows: ours with the
defaults, ours + gyro with the lens taken as a pinhole's (the homography alone), ours + gyro through the lens
(``CameraModel.warp_affines``, as ``tracker_node`` does with camera_info's D); between
``<!-- bench:gyro_pan_lens:start/end -->``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, DATA, OUT, command_footer, markdown_table, report
from ros2_tracker.cmc.gyro import GyroBuffer, rotation_homography
from ros2_tracker.core import Tracker, TrackerConfig
from ros2_tracker.eval.metrics import evaluate_sequence
from ros2_tracker.io.camera_model import CameraModel, camera_model
from ros2_tracker.io.mot import MotRows, read_mot, write_results
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.offline import track_mot_detections

DATASETS = {  # key: (folder, detections)
    "tud-campus-frcnn": ("TUD-Campus", "det_frcnn.txt"),
    "tud-stadtmitte": ("TUD-Stadtmitte", "det_frcnn.txt"),
    "pets09-s3mf1": ("PETS09-S3MF1", "det.txt"),
    "synthetic": (None, "det.txt"),
}
YAW_DEG, TILT_DEG, TILT_PERIOD_S = 20.0, 0.5, 1.3
FOV_DEG = 60.0
GYRO_HZ, GYRO_NOISE_DEG, GYRO_BIAS_DEG = 200.0, 0.3, 1.0
ROWS = {  # key: (label, TrackerConfig overrides, gyro bias [deg/s] or None for no gyro)
    "defaults": ("ours, defaults (no gyro)", {}, None),
    "no_comp": ("ours, no compensation (`camera_motion_gain` 0)", {"camera_motion_gain": 0.0}, None),
    "gyro": ("ours + gyro", {}, 0.0),
    "gyro_biased": (f"ours + gyro, {GYRO_BIAS_DEG:g} deg/s bias", {}, GYRO_BIAS_DEG),
}
LENS_ROWS = {  # --lens: key: (label, gyro through the lens)
    "defaults": ("ours, defaults (no gyro)", None),
    "gyro_pinhole": ("ours + gyro, lens taken as a pinhole's", False),
    "gyro_lens": ("ours + gyro through the lens", True),
}


def camera_matrix(width: int, height: int) -> np.ndarray:
    f = width / 2.0 / math.tan(math.radians(FOV_DEG) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def _angles(t: np.ndarray, rate_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Yaw, tilt [rad] and their rates [rad/s] at times ``t`` (0 at t = 0): the yaw swings +-YAW_DEG about
    its start with peak rate ``rate_deg``, the tilt shakes."""
    amp, tilt = math.radians(YAW_DEG), math.radians(TILT_DEG)
    w, wt = math.radians(rate_deg) / amp, 2 * math.pi / TILT_PERIOD_S
    return amp * np.sin(w * t), tilt * np.sin(wt * t), amp * w * np.cos(w * t), tilt * wt * np.cos(wt * t)


def camera_pose(t: float, rate_deg: float) -> np.ndarray:
    """The camera's orientation at ``t`` against t = 0, in its optical frame: yaw (about y) then tilt."""
    yaw, tilt, _, _ = _angles(np.array([t]), rate_deg)
    return Rotation.from_euler("YX", [float(yaw[0]), float(tilt[0])]).as_matrix()  # Ry(yaw) @ Rx(tilt)


def angular_velocity(t: np.ndarray, rate_deg: float) -> np.ndarray:
    """(n, 3) body angular velocity [rad/s] (optical frame) of :func:`camera_pose`: R^T dR/dt."""
    _, tilt, yaw_rate, tilt_rate = _angles(t, rate_deg)
    # R = Ry(yaw) Rx(tilt): omega = Rx(tilt)^T (0, yaw', 0) + (tilt', 0, 0)
    return np.stack([tilt_rate, np.cos(tilt) * yaw_rate, -np.sin(tilt) * yaw_rate], axis=1)


def turn_boxes(frames: np.ndarray, tlwh: np.ndarray, fps: float, k: np.ndarray,
               rate_deg: float, lens: CameraModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of each frame as the turning camera sees them (bounding boxes of the mapped corners, taken
    through ``lens`` too when given), and which of them it sees: those whose centre stays in the image
    (2 cx, 2 cy of K)."""
    out = np.empty_like(tlwh)
    for f in np.unique(frames):
        rows = frames == f
        h = rotation_homography(k, camera_pose((f - 1) / fps, rate_deg))
        x, y, w, hh = tlwh[rows].T
        corners = np.stack([np.c_[x, y], np.c_[x + w, y], np.c_[x, y + hh], np.c_[x + w, y + hh]], axis=1)
        p = np.concatenate([corners, np.ones((*corners.shape[:2], 1))], axis=2) @ h.T
        xy = p[..., :2] / p[..., 2:]
        if lens is not None:
            xy = lens.distort(xy.reshape(-1, 2)).reshape(xy.shape)
        lo, hi = xy.min(axis=1), xy.max(axis=1)
        out[rows] = np.c_[lo, hi - lo]
    cx, cy = out[:, 0] + out[:, 2] / 2, out[:, 1] + out[:, 3] / 2
    seen = (cx >= 0) & (cx <= 2 * k[0, 2]) & (cy >= 0) & (cy <= 2 * k[1, 2])
    return out, seen


def simulated_gyro(seconds: float, rate_deg: float, bias_deg: float, rng: np.random.Generator) -> GyroBuffer:
    t = np.arange(-0.1, seconds + 0.1, 1.0 / GYRO_HZ)
    w = angular_velocity(t, rate_deg) + rng.normal(0.0, math.radians(GYRO_NOISE_DEG), (len(t), 3))
    w += math.radians(bias_deg)
    gyro = GyroBuffer(keep_s=seconds + 1.0)
    for ti, wi in zip(t, w, strict=True):
        gyro.add(float(ti), wi)
    return gyro


def run(folder: Path, det_name: str, rate_deg: float, work: Path,
        seed: int, k1: float | None = None) -> dict[str, tuple[float, float]]:
    info = read_sequence_info(folder)
    fps, n = info.fps, info.length
    k = camera_matrix(info.width, info.height)
    lens = None if k1 is None else camera_model(k, [k1, -k1 / 3.0, 0.0, 0.0, 0.0], "plumb_bob",
                                                size=(info.width, info.height))
    dets = read_mot(folder / "det" / det_name)
    boxes, seen = turn_boxes(dets.frames, dets.boxes_tlwh, fps, k, rate_deg, lens)
    dets = MotRows(dets.frames[seen], dets.ids[seen], boxes[seen], dets.scores[seen], dets.extra[seen])
    gt = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt[:, 2:6], seen = turn_boxes(gt[:, 0].astype(int), gt[:, 2:6], fps, k, rate_deg, lens)
    gt = gt[seen]
    gt_path = work / "gt.txt"
    np.savetxt(gt_path, gt, delimiter=",", fmt="%.6g")
    scores = {}
    rows = ({key: (overrides, bias, None) for key, (_, overrides, bias) in ROWS.items()} if lens is None
            else {key: ({}, None if through is None else 0.0, lens.warp_affines if through else None)
                  for key, (_, through) in LENS_ROWS.items()})
    for key, (overrides, bias, local) in rows.items():
        tracker = Tracker(TrackerConfig(**overrides))
        hook = None
        if bias is not None:
            gyro = simulated_gyro(n / fps, rate_deg, bias, np.random.default_rng(seed))

            def hook(frame: int, boxes: np.ndarray, tracker: Tracker = tracker,
                     gyro: GyroBuffer = gyro, local=local) -> None:
                if frame > 1:
                    rot = gyro.rotation((frame - 2) / fps, (frame - 1) / fps)
                    tracker.apply_camera_motion(rotation_homography(k, rot), local)
        res = track_mot_detections(dets, tracker, fps, last_frame=n, features=hook)
        out = work / f"{key}.txt"
        write_results(out, res.frames, res.ids, res.boxes_tlwh, res.scores)
        m = evaluate_sequence(gt_path, out, num_frames=n, name=folder.name)
        scores[key] = (100 * m.HOTA, 100 * m.IDF1)
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[30.0, 60.0, 90.0],
                   help="peak yaw rates [deg/s]")
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    p.add_argument("--seed", type=int, default=0, help="the simulated gyro's noise")
    p.add_argument("--lens", type=float, default=None, metavar="K1",
                   help="a lens's radial distortion k1 (k2 = -k1 / 3), e.g. -0.3: barrel")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=OUT / "gyro_pan")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    folders = {}
    for key in args.datasets:
        name, _ = DATASETS[key]
        if name is None:
            from ros2_tracker.synthetic.scene import SceneConfig, generate_scene

            folders[key] = generate_scene(SceneConfig()).write_mot(args.out / "synthetic", render=False)
        elif not (args.data / name).is_dir():
            print(f"skipping {key}: {args.data / name} not found", file=sys.stderr)
        else:
            folders[key] = args.data / name
    table = []
    for key, folder in folders.items():
        for rate in args.rates:
            with tempfile.TemporaryDirectory(dir=args.out) as work:
                scores = run(folder, DATASETS[key][1], rate, Path(work), args.seed, args.lens)
            print(key, rate, scores, file=sys.stderr)
            table.append([key, f"{rate:g}"] + [f"{s[0]:.1f} / {s[1]:.1f}" for s in scores.values()])
    labels = ([label for label, _, _ in ROWS.values()] if args.lens is None
              else [label for label, _ in LENS_ROWS.values()])
    lens_text = ("" if args.lens is None else
                 f" through a lens of k1 {args.lens:g}, k2 {-args.lens / 3:g} (plumb_bob)")
    text = ("HOTA / IDF1 (TrackEval) with the boxes of a camera yawing back and forth by +-"
            f"{YAW_DEG:g} deg at the peak rate given (60 deg view; boxes whose centre leaves the image "
            f"dropped; {TILT_DEG:g} deg tilt shake){lens_text}; gyro at {GYRO_HZ:g} Hz, {GYRO_NOISE_DEG:g} "
            "deg/s rms noise.\n\n"
            + markdown_table(["sequence", "peak deg/s", *labels], table)
            + "\n\n" + command_footer("bench/gyro_pan.py", argv))
    report(text, "gyro_pan" if args.lens is None else "gyro_pan_lens",
           None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
