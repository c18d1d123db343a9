"""``ros2-tracker results``: MOTChallenge results, and metrics, from the tracks a run recorded in a bag.

    ros2-tracker results BAG --output RES.txt [--topic /tracks] [--frame-topic TOPIC]
                         [--report-lost-s S] [--gt GT.txt [--frames N] [--json M.json]] [--latency L.json]

A robot tracks live (``ros2 launch ros2_tracker pipeline.launch.py camera:=true record:=true``, or
``ros2 bag record`` of the tracker's topic beside any launch); this turns the bag's
``ros2_tracker/TrackArray`` messages into the rows ``ros2-tracker track`` writes
(``frame,id,x,y,w,h,conf,X,Y,Z``: the confirmed tracks matched in each frame; the world columns carry a
depth camera's positions, ``-1`` without) and, with ground truth, scores them with TrackEval.

Frame numbers (ground truth numbers the camera's frames 1, 2, ...):

* by default, the rank of each message's stamp among the topic's: the tracker publishes one TrackArray per
  frame it tracked, empty ones included, so this is right unless frames were dropped before it (a slow
  detector); a step between stamps of more than 1.5 typical steps is then warned about;
* ``--frame-topic TOPIC``: the rank among the stamps of that topic's messages in the same bag (the camera's
  images, which the ground truth was annotated on): a TrackArray carries its image's stamp, so frames
  dropped on the way keep the numbering. TrackArrays whose stamp no message of that topic has are left
  out, and counted.

A stamp tracked twice (a message sent again, a replayed bag) keeps the later message's rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ros2_tracker.cli.errors import UserError, check_frames_option, check_output_files

_TRACKS = "ros2_tracker/msg/TrackArray"
_GAP = 1.5  # a step between stamps above this many typical steps: frames missing (rank numbering)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("results", help="MOTChallenge results (and metrics) from the tracks a run recorded "
                       "in a bag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bag", type=Path, metavar="BAG",
                   help="rosbag2 folder (metadata.yaml + .mcap) or .mcap file")
    p.add_argument("--output", type=Path, required=True, help="MOTChallenge results file to write")
    p.add_argument("--topic", default="/tracks", help="the TrackArray topic (default: /tracks)")
    p.add_argument("--frame-topic", metavar="TOPIC",
                   help="number frames by the stamps of this topic's messages (the camera's images)")
    p.add_argument("--report-lost-s", type=float, default=0.0, metavar="S",
                   help="also report lost (coasting) tracks for S seconds after their last detection, as the "
                   "tracker's report_lost_s (default 0: matched tracks only)")
    p.add_argument("--gt", type=Path, help="ground truth (gt/gt.txt) to score the results against")
    p.add_argument("--frames", type=int, help="with --gt: score frames 1..N (default: the last frame "
                   "with ground truth)")
    p.add_argument("--json", type=Path, help="with --gt: write the metrics here as JSON")
    p.add_argument("--latency", type=Path, metavar="L.json", help="write the latency profile here as JSON")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``results``."""
    from ros2_tracker.io.bag import BagError, bag_topics
    from ros2_tracker.io.mot import write_results

    check_frames_option(args.frames)
    if (args.frames is not None or args.json is not None) and args.gt is None:
        raise UserError(f"{'--frames' if args.frames is not None else '--json'} needs --gt")
    if not (np.isfinite(args.report_lost_s) and 0.0 <= args.report_lost_s <= 3600.0):
        raise UserError(f"--report-lost-s must be between 0 and 3600 s, got {args.report_lost_s}")
    check_output_files({"--output": args.output, "--json": args.json, "--latency": args.latency},
                       {"--gt": args.gt, "BAG": args.bag})
    try:
        topics = bag_topics(args.bag)
    except BagError as exc:
        raise UserError(f"BAG {exc}") from None
    _check_topic(args.bag, topics, args.topic, _TRACKS, "--topic")
    if args.frame_topic is not None:
        _check_topic(args.bag, topics, args.frame_topic, None, "--frame-topic")
    frames, ids, boxes, scores, world, messages = _rows(args)
    write_results(args.output, frames, ids, boxes, scores, world=world)
    print(f"{messages} tracks messages, {len(np.unique(frames))} frames with results, "
          f"{len(np.unique(ids))} tracks -> {args.output}")
    _latency(args)
    if args.gt is not None:
        _score(args)
    return 0


def _latency(args: argparse.Namespace) -> None:
    """Print the latency profile the bag holds (the nodes' ~/timing stages; a live camera's stamp to the
    recorder), and write it with ``--latency``."""
    from ros2_tracker.io.files import write_text
    from ros2_tracker.nodes.recording import format_latency, latency_profile

    profile = latency_profile(args.bag, args.topic, live=True)
    if profile["stages"] or "stamp_to_receive" in profile or "end_to_end" in profile:
        print(format_latency(profile))
    if args.latency is not None:
        write_text(args.latency, json.dumps(profile, indent=1) + "\n")


def _check_topic(bag: Path, topics: dict[str, str], topic: str, msgtype: str | None, option: str) -> None:
    """UserError unless the bag has ``topic`` (of ``msgtype``, when given); the message lists the topics."""
    if topic in topics and msgtype in (None, topics[topic]):
        return
    what = f"{topic} is {topics[topic]}, not {msgtype}" if topic in topics else f"no topic {topic}"
    listed = ", ".join(f"{t} [{ty}]" for t, ty in sorted(topics.items()) if msgtype in (None, ty))
    raise UserError(f"{option}: {bag} has {what}; its {'TrackArray ' if msgtype else ''}topics: "
                    f"{listed or 'none'}")


def _rows(args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    """The result rows (frames, ids, boxes, scores, world or None) and the number of messages read."""
    from ros2_tracker.nodes.recording import tracks_from_bag

    rows = tracks_from_bag(args.bag, 0.0, args.topic, args.report_lost_s, snapshots=False)
    if not rows.stamps_ns:
        raise UserError(f"BAG {args.bag}: no messages on {args.topic}")
    stamps = np.unique(np.asarray(rows.stamps_ns, dtype=np.int64))
    row_stamps = stamps[rows.frames - 1]  # frames are the ranks of the stamps here
    if args.frame_topic is None:
        frames = rows.frames
        _warn_gaps(stamps)
    else:
        frames = _frames_of(args.bag, args.frame_topic, row_stamps, stamps)
    keep = _of_last_messages(np.asarray(rows.stamps_ns, dtype=np.int64), rows.message_rows) & (frames > 0)
    world = rows.positions[keep] if rows.positions is not None else None
    return frames[keep], rows.ids[keep], rows.boxes_tlwh[keep], rows.scores[keep], world, len(rows.stamps_ns)


def _warn_gaps(stamps: np.ndarray) -> None:
    """Say where the tracks' stamps step by more than ``_GAP`` typical steps (frames dropped before the
    tracker shift the rank numbering after them)."""
    steps = np.diff(stamps)
    if len(steps) < 2:
        return
    typical = float(np.median(steps))
    gaps = np.flatnonzero(steps > _GAP * typical)
    if len(gaps):
        print(f"warning: the tracks' stamps step by more than {_GAP:g} typical steps "
              f"({typical * 1e-9:.4f} s) {len(gaps)} time(s), first after frame {gaps[0] + 1}: if frames "
              "were dropped before the tracker, the frame numbers after each gap are too low; --frame-topic "
              "numbers them by the camera's messages", file=sys.stderr)


def _frames_of(bag: Path, topic: str, row_stamps: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Each row's frame: the rank of its stamp among ``topic``'s message stamps; 0 where none has it."""
    from ros2_tracker.io.bag import cdr_header_stamp_ns, read_bag

    try:
        frame_stamps = np.unique(np.array([cdr_header_stamp_ns(m.data) for m in read_bag(bag, [topic])],
                                          dtype=np.int64))
    except ValueError as exc:  # a message without a leading std_msgs/Header
        raise UserError(f"--frame-topic {topic}: its messages carry no header stamp ({exc})") from None
    at = np.searchsorted(frame_stamps, row_stamps)
    found = at < len(frame_stamps)
    found[found] = frame_stamps[at[found]] == row_stamps[found]
    missing = np.setdiff1d(stamps, frame_stamps)
    if len(missing) == len(stamps):
        raise UserError(f"--frame-topic {topic}: none of its {len(frame_stamps)} stamps is a tracks "
                        f"message's (the first tracks stamp {stamps[0] * 1e-9:.6f} s, the topic's "
                        f"{frame_stamps[0] * 1e-9 if len(frame_stamps) else float('nan'):.6f} s): is it the "
                        "camera the tracker tracked on?")
    if len(missing):
        print(f"warning: {len(missing)} of {len(stamps)} tracks messages have a stamp no {topic} message has "
              f"(the first at {missing[0] * 1e-9:.6f} s): their rows are left out", file=sys.stderr)
    return np.where(found, at + 1, 0)


def _of_last_messages(stamps: np.ndarray, message_rows: list[int]) -> np.ndarray:
    """Per row: whether its message is the last one with its stamp (a stamp tracked twice: the later)."""
    order = np.lexsort((np.arange(len(stamps)), stamps))
    last = np.ones(len(stamps), dtype=bool)
    last[order[:-1]] = stamps[order][1:] != stamps[order][:-1]
    if not last.all():
        print(f"note: {int((~last).sum())} tracks messages repeat a later one's stamp: the later one's rows "
              "are kept", file=sys.stderr)
    return np.repeat(last, message_rows)


def _score(args: argparse.Namespace) -> None:
    from ros2_tracker.cli.evaluate import sequence_name
    from ros2_tracker.eval.metrics import evaluate_sequence, format_table, write_json

    name = sequence_name(args.gt)
    rows = [(name, evaluate_sequence(args.gt, args.output, num_frames=args.frames, name=name))]
    print(format_table(rows))
    if args.json:
        write_json(args.json, rows)
