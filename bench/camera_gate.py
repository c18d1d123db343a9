"""Does the camera-motion share rise where the camera moves? Real sequences, most without ground truth here.

    .venv/bin/python bench/camera_gate.py [--data DIR] [--markdown BENCHMARKS.md | --no-markdown]

The simulated pans of ``bench/camera_pan.py`` have ground truth; the real moving-camera sequences in
``../shared`` (MOT15: ADL-Rundle-8, ETH-*, KITTI-13; MOT17-05, -10, -11, -13) have none, or only for their
first frames. Without ground truth two things can still be measured on every frame of their detections:

* ``weight``: the mean share of ``camera_motion_gain`` the updates applied (``Tracker.camera_motion_weight``:
  1 while ``camera_motion_gate`` is open, else the weight of the matched tracks' common motion against its
  noise), and the share of updates with at least half of it (``Tracker.camera_motion_applied``), with the
  defaults. On a static camera with people who move independently both should stay near 0.
* ``identities``: the track ids the results file reports, with the defaults and with
  ``camera_motion_gain`` 0 (off). On the same detections, fewer identities for as many reported boxes means
  fewer broken tracks (a person keeps one identity), so a drop is a likely gain, though this is a proxy,
  not a metric.

Whether a sequence's camera moves is from the sequences' public descriptions (MOTChallenge), not from
anything computed here. The table goes between ``<!-- bench:camera_gate:start/end -->`` markers.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, DATA, command_footer, markdown_table, report
from ros2_tracker.core.track import TrackSet
from ros2_tracker.core.tracker import Tracker, TrackerConfig
from ros2_tracker.io.mot import read_mot
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.offline import track_mot_detections

# (folder under DATA, detection file, camera) -- camera as the sequences' public descriptions give it
SEQUENCES = (
    ("ADL-Rundle-6", "det_frcnn.txt", "static"),
    ("ADL-Rundle-8", "det_frcnn.txt", "moving (hand-held)"),
    ("ETH-Bahnhof", "det_frcnn.txt", "moving (walking forward)"),
    ("ETH-Pedcross2", "det_frcnn.txt", "moving (walking forward)"),
    ("ETH-Sunnyday", "det_frcnn.txt", "moving (walking forward)"),
    ("KITTI-13", "det_frcnn.txt", "moving (car)"),
    ("KITTI-17", "det_frcnn.txt", "static"),
    ("PETS09-S2L1", "det_frcnn.txt", "static"),
    ("TUD-Campus", "det_frcnn.txt", "static"),
    ("TUD-Stadtmitte", "det_frcnn.txt", "static"),
    ("Venice-2", "det_frcnn.txt", "static"),
    ("PETS09-S3MF1", "det.txt", "static"),
    ("MOT17-mini/train/MOT17-02-FRCNN", "det.txt", "static"),
    ("MOT17-mini/train/MOT17-04-FRCNN", "det.txt", "static"),
    ("MOT17-mini/train/MOT17-05-FRCNN", "det.txt", "moving (walking)"),
    ("MOT17-mini/train/MOT17-09-FRCNN", "det.txt", "static"),
    ("MOT17-mini/train/MOT17-10-FRCNN", "det.txt", "moving (walking)"),
    ("MOT17-mini/train/MOT17-11-FRCNN", "det.txt", "moving (walking)"),
    ("MOT17-mini/train/MOT17-13-FRCNN", "det.txt", "moving (bus)"),
)


def track(root: Path, det_name: str, config: TrackerConfig) -> tuple[int, int, float, float]:
    """Run the core tracker over every frame (as ``ros2-tracker track`` does); returns (identities reported,
    boxes reported, mean camera-motion weight, share of updates with a weight of at least 0.5)."""
    fps = read_sequence_info(root).fps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = read_mot(root / "det" / det_name)
    weights: list[float] = []

    def note(_frame: int, _tracks: TrackSet, tracker: Tracker) -> None:
        weights.append(tracker.camera_motion_weight)

    result = track_mot_detections(rows, Tracker(config), fps, on_frame=note)
    n = max(len(weights), 1)
    half = sum(w >= 0.5 for w in weights)
    return len(set(result.ids.tolist())), len(result.ids), sum(weights) / n, half / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder of the sequences")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    present = [s for s in SEQUENCES if (args.data / s[0] / "det" / s[1]).is_file()]
    if not present:
        print(f"camera_gate: no detections under {args.data}", file=sys.stderr)
        return 2
    defaults, off = TrackerConfig(), TrackerConfig(camera_motion_gain=0.0)
    rows = []
    for folder, det, camera in tqdm(present, desc="camera_gate", unit="seq"):
        ids_on, boxes_on, weight, share = track(args.data / folder, det, defaults)
        ids_off, boxes_off, _, _ = track(args.data / folder, det, off)
        rows.append([Path(folder).name, camera, f"{weight:.2f}", f"{100 * share:.1f} %",
                     f"{ids_off} → {ids_on}", f"{100 * (ids_on - ids_off) / max(ids_off, 1):+.0f} %",
                     f"{boxes_off} → {boxes_on}"])
    table = markdown_table(["sequence", "camera", "mean weight", "weight >= 0.5",
                            "identities (gain off → defaults)", "change", "boxes reported"], rows)
    body = (f"Defaults: `camera_motion_gain` {defaults.camera_motion_gain}, `camera_motion_gate` "
            f"{defaults.camera_motion_gate}; every frame of each detection file.\n\n{table}\n\n"
            + command_footer('bench/camera_gate.py', argv))
    report(body, "camera_gate", None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
