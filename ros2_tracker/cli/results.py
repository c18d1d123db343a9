"""``ros2-tracker results``: MOTChallenge results, and metrics, from the tracks a run recorded in a bag.

    ros2-tracker results BAG --output RES.txt [--topic /tracks] [--frame-topic TOPIC]
                         [--report-lost-s S] [--gt GT.txt [--frames N] [--json M.json]] [--latency L.json]
                         [--offline [--refine-config F]] [--video V.mp4 [--image-topic TOPIC]]

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

A stamp tracked twice (a message sent again, a replayed bag) keeps the later message's rows. What a damaged
recording cannot give is left out and counted in a warning: messages that cannot be read, rows no results
file can hold (a NaN or empty box, a NaN score, an id beyond 2**53), an id's second row in a frame; a
recording cut short (a recorder killed) gives its messages up to the cut. Stamps that go back in recording
order (two runs in one bag) and gaps in either numbering are warned about. Ground truth is checked, and no
output may be a file of the bag, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.cli.errors import (
    UserError,
    check_frames_option,
    check_output_files,
    check_scoring_ground_truth,
)
from ros2_tracker.cli.refining import add_offline_options

_TRACKS = "ros2_tracker/msg/TrackArray"
_GAP = 1.5  # a step between stamps above this many typical steps: frames missing (rank numbering)
_MAX_ID = 2**53  # evaluators (TrackEval, as floats) count ids exactly below this


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
    p.add_argument("--video", type=Path, metavar="V.mp4", help="draw the camera's pictures recorded in the "
                   "bag (--image-topic) with the tracks of their stamps into this video")
    p.add_argument("--image-topic", metavar="TOPIC", help="with --video: the sensor_msgs/Image or "
                   "CompressedImage topic to draw on (default: --frame-topic)")
    add_offline_options(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``results``."""
    from ros2_tracker.io.bag import BagDamageWarning
    from ros2_tracker.io.mot import write_results

    refine = _check_options(args)
    _check_files(args)
    with warnings.catch_warnings(record=True) as damage:  # a cut recording: said once, as a warning line
        warnings.simplefilter("always", BagDamageWarning)
        frames, ids, boxes, scores, world, classes, stamps, messages, recorded = _rows(args)
        profile = _latency_profile(args)
    for text in dict.fromkeys(str(w.message) for w in damage if issubclass(w.category, BagDamageWarning)):
        print(f"warning: {text}", file=sys.stderr)
    write_results(args.output, frames, ids, boxes, scores, world=world)
    print(f"{messages} tracks messages, {len(np.unique(frames))} frames with results, "
          f"{len(np.unique(ids))} tracks -> {args.output}")
    _latency(args, profile)
    if args.video is not None:
        _video(args, recorded)
    if refine is not None:
        from ros2_tracker.cli.evaluate import sequence_name
        from ros2_tracker.cli.refining import refine_recorded
        from ros2_tracker.refine.outputs import fps_from_stamps

        refine_recorded(frames, ids, boxes, scores, results=args.output, fps=fps_from_stamps(stamps),
                        config=refine, classes=classes, world=world, gt=args.gt,
                        name=sequence_name(args.gt) if args.gt is not None else "", num_frames=args.frames,
                        json_path=args.json)
    elif args.gt is not None:
        _score(args)
    return 0


def _check_options(args: argparse.Namespace) -> Any:
    """UserError for options that do not go together or are out of range; the RefineConfig of
    ``--offline`` (None without)."""
    check_frames_option(args.frames)
    if (args.frames is not None or args.json is not None) and args.gt is None:
        raise UserError(f"{'--frames' if args.frames is not None else '--json'} needs --gt")
    if args.refine_config is not None and not args.offline:
        raise UserError("--refine-config needs --offline")
    if args.image_topic is not None and args.video is None:
        raise UserError("--image-topic needs --video")
    if args.video is not None and (args.image_topic or args.frame_topic) is None:
        raise UserError("--video needs the camera's topic in the bag: --image-topic TOPIC (or --frame-topic)")
    if not (np.isfinite(args.report_lost_s) and 0.0 <= args.report_lost_s <= 3600.0):
        raise UserError(f"--report-lost-s must be between 0 and 3600 s, got {args.report_lost_s}")
    if not args.offline:
        return None
    from ros2_tracker.cli.refining import load_refine_config

    return load_refine_config(args.refine_config)  # a bad parameter file: refused before anything


def _check_files(args: argparse.Namespace) -> None:
    """UserError, before anything is written, for a bag that cannot be read or lacks the topics, an output
    that is an input or a file of the bag, and ground truth that cannot be scored."""
    from ros2_tracker.io.bag import BagError, bag_files, bag_topics
    from ros2_tracker.refine.outputs import offline_results_path

    try:
        files = bag_files(args.bag)  # the recording itself: no output may be one of its files
        topics = bag_topics(args.bag)
    except BagError as exc:
        raise UserError(f"BAG {exc}") from None
    recording = {f"BAG's {f.name}": f for f in files}
    if args.bag.is_dir():
        recording["BAG's metadata.yaml"] = args.bag / "metadata.yaml"
    outputs = {"--output": args.output, "--json": args.json, "--latency": args.latency, "--video": args.video,
               "--offline's results": offline_results_path(args.output) if args.offline else None}
    check_output_files(outputs, {"--gt": args.gt, "BAG": args.bag, "--refine-config": args.refine_config,
                                 **recording})
    if args.gt is not None:  # a ground truth that cannot be scored is refused before anything is written
        check_scoring_ground_truth(args.gt, args.frames)
    _check_topic(args.bag, topics, args.topic, _TRACKS, "--topic")
    if args.frame_topic is not None:
        _check_topic(args.bag, topics, args.frame_topic, None, "--frame-topic")
    if args.video is not None:
        from ros2_tracker.viz.recorded import PICTURE_TYPES

        option = "--image-topic" if args.image_topic is not None else "--frame-topic (as --video's pictures)"
        topic = args.image_topic or args.frame_topic
        _check_topic(args.bag, topics, topic, None, option)
        if topics[topic] not in PICTURE_TYPES:
            raise UserError(f"{option}: {topic} is {topics[topic]}, not a picture "
                            f"({' or '.join(PICTURE_TYPES)})")


def _video(args: argparse.Namespace, recorded: Any) -> None:
    """``--video``: the recorded pictures with the tracks of their stamps."""
    from ros2_tracker.viz.recorded import write_recorded_video

    topic = args.image_topic or args.frame_topic
    path, count, _ = write_recorded_video(args.video, args.bag, topic, recorded,
                                          title=args.bag.stem if args.bag.is_file() else args.bag.name)
    print(f"video: {count} pictures -> {path}")


def _latency_profile(args: argparse.Namespace) -> dict:
    """The latency profile the bag holds: the nodes' ~/timing stages; a live camera's stamp to the
    recorder."""
    from ros2_tracker.nodes.recording import latency_profile

    return latency_profile(args.bag, args.topic, live=True)


def _latency(args: argparse.Namespace, profile: dict) -> None:
    """Print the latency profile, and write it with ``--latency``."""
    from ros2_tracker.io.files import write_text
    from ros2_tracker.nodes.recording import format_latency

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
    """The result rows (frames, ids, boxes, scores, world or None, classes or None), the distinct stamps,
    the number of messages read and what ``tracks_from_bag`` gave (snapshots to draw with ``--video``)."""
    from ros2_tracker.nodes.recording import tracks_from_bag

    rows = tracks_from_bag(args.bag, 0.0, args.topic, args.report_lost_s, snapshots=args.video is not None)
    if rows.unreadable:
        index, at, reason = rows.unreadable[0]
        where = f"stamp {at * 1e-9:.6f}" if at is not None else "no readable stamp"
        print(f"warning: {len(rows.unreadable)} {args.topic} message(s) could not be read and were skipped "
              f"(the first, message {index + 1} of the topic, {where}: {reason})", file=sys.stderr)
    if not rows.stamps_ns:
        raise UserError(f"BAG {args.bag}: no readable messages on {args.topic}")
    in_order = np.asarray(rows.stamps_ns, dtype=np.int64)
    stamps = np.unique(in_order)
    row_stamps = stamps[rows.frames - 1]  # frames are the ranks of the stamps here
    _warn_backwards(in_order)
    if args.frame_topic is None:
        frames = rows.frames
        _warn_gaps(stamps, "the tracks'", "if frames were dropped before the tracker, the frame numbers "
                   "after each gap are too low; --frame-topic numbers them by the camera's messages")
    else:
        frames = _frames_of(args.bag, args.frame_topic, row_stamps, stamps)
    keep = _of_last_messages(in_order, rows.message_rows) & (frames > 0)
    keep &= _valid_rows(rows.ids, rows.boxes_tlwh, rows.scores, frames, keep)
    world = rows.positions[keep] if rows.positions is not None else None
    classes = rows.classes[keep] if rows.classes is not None else None
    return (frames[keep], rows.ids[keep], rows.boxes_tlwh[keep], rows.scores[keep], world, classes, stamps,
            len(rows.stamps_ns), rows)


def _valid_rows(ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray, frames: np.ndarray,
                keep: np.ndarray) -> np.ndarray:
    """False for rows a results file cannot hold (a non-finite or empty box, a non-finite score, an id
    beyond the 2**53 evaluators count to) and for an id's second row in a frame; says how many."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(boxes).all(axis=1) | ~(boxes[:, 2] > 0) | ~(boxes[:, 3] > 0) | ~np.isfinite(scores)
    bad |= (ids < 0) | (ids >= _MAX_ID)
    good = keep & ~bad
    order = np.flatnonzero(good)
    order = order[np.lexsort((order, ids[order], frames[order]))]  # (first of each (frame, id) first)
    again = np.zeros(len(ids), dtype=bool)
    same = (frames[order][1:] == frames[order][:-1]) & (ids[order][1:] == ids[order][:-1])
    again[order[1:][same]] = True
    for count, what in ((int((bad & keep).sum()), "with a NaN/inf or empty box, a NaN/inf score, or an id "
                         "beyond 2**53"),
                        (int(again.sum()), "repeating an id within its frame (the first kept)")):
        if count:
            print(f"warning: {count} track row(s) {what}: left out", file=sys.stderr)
    return ~bad & ~again


def _warn_backwards(in_order: np.ndarray) -> None:
    """Say where the stamps go back in recording order by more than a typical step (two runs, or a clock
    reset, in one bag: numbered together by stamp, their frames interleave)."""
    steps = np.diff(in_order)
    forward = steps[steps > 0]
    if not len(forward):
        return
    back = np.flatnonzero(steps < -_GAP * float(np.median(forward)))
    if len(back):
        print(f"warning: the tracks' stamps go back {len(back)} time(s) in recording order (first after "
              f"message {back[0] + 1}: {in_order[back[0] + 1] * 1e-9:.6f} s after "
              f"{in_order[back[0]] * 1e-9:.6f} s): two runs or a clock reset in one bag are numbered "
              "together, by stamp", file=sys.stderr)


def _warn_gaps(stamps: np.ndarray, whose: str, consequence: str) -> None:
    """Say where the (sorted, distinct) ``stamps`` step by more than ``_GAP`` typical steps: frames missing
    there shift the rank numbering after them."""
    steps = np.diff(stamps)
    if len(steps) < 2:
        return
    typical = float(np.median(steps))
    gaps = np.flatnonzero(steps > _GAP * typical)
    if len(gaps):
        print(f"warning: {whose} stamps step by more than {_GAP:g} typical steps ({typical * 1e-9:.4f} s) "
              f"{len(gaps)} time(s), first after frame {gaps[0] + 1}: {consequence}", file=sys.stderr)


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
        early = int((missing < frame_stamps[0]).sum())
        print(f"warning: {len(missing)} of {len(stamps)} tracks messages have a stamp no {topic} message has "
              f"(the first at {missing[0] * 1e-9:.6f} s; {early} before the topic's first): their rows are "
              f"left out, and where {topic} lacks frames, the numbers after them are too low",
              file=sys.stderr)
    _warn_gaps(frame_stamps, f"the {topic} messages'", "frames missing from the recording there make the "
               "frame numbers after each gap too low")
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
