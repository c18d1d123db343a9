"""``ros2-tracker evaluate``: score MOTChallenge results against ground truth with TrackEval.

    ros2-tracker evaluate --gt GT.txt --results RES.txt [--frames N] [--name NAME]
    ros2-tracker evaluate --pairs NAME=GT.txt:RES.txt [NAME=GT.txt:RES.txt ...]
    ros2-tracker evaluate --results-dir RES_DIR --gt-root DATA_DIR

``--results-dir`` scores every ``RES_DIR/<seq>.txt`` whose ``DATA_DIR/<seq>/gt/gt.txt`` exists (the
MOTChallenge submission layout); results without ground truth, and sequences with ground truth but no
results (left out of COMBINED), are named in a warning. Several sequences add a COMBINED row (TrackEval's
combination).
Only frames up to the last one with ground truth are scored unless ``--frames`` says otherwise
(``--gt-root``: up to each sequence's seqinfo.ini seqLength, as TrackEval does, where it gives one).
Prints a table (HOTA, DetA, AssA, MOTA, IDF1 in %; IDSW, FP, FN); ``--csv``/``--json`` write every
metric as fractions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ros2_tracker.cli.errors import UserError, check_frames_option, check_output_files
from ros2_tracker.eval.metrics import (
    COMBINED,
    GT_FORMATS,
    Metrics,
    SequencePair,
    evaluate_many,
    evaluate_sequence,
    format_table,
    write_csv,
    write_json,
)
from ros2_tracker.io.sequence import read_sequence_info


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("evaluate", help="score MOTChallenge results with TrackEval (HOTA, MOTA, IDF1)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", type=Path, help="ground truth (gt/gt.txt, MOT15 or MOT17 style)")
    p.add_argument("--results", type=Path, help="tracker results to score against --gt")
    p.add_argument("--frames", type=int,
                   help="score frames 1..N (default: the last frame with ground truth)")
    p.add_argument("--name", help="sequence name in the table (default: the sequence folder of --gt)")
    p.add_argument("--pairs", nargs="+", metavar="NAME=GT:RES",
                   help="several sequences, one NAME=GT:RES each")
    p.add_argument("--results-dir", type=Path, help="folder of <seq>.txt results (with --gt-root)")
    p.add_argument("--gt-root", type=Path, help="folder of MOTChallenge sequences (<seq>/gt/gt.txt); each "
                   "is scored up to its seqinfo.ini's seqLength, as TrackEval does (without one: up to "
                   "its last frame with ground truth)")
    p.add_argument("--gt-format", choices=GT_FORMATS, default="auto",
                   help="ground-truth style (default: auto, by column count)")
    p.add_argument("--csv", type=Path, help="write the metrics here as CSV")
    p.add_argument("--json", type=Path, help="write the metrics here as JSON")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``evaluate``."""
    check_frames_option(args.frames)
    rows = _evaluate(args)
    print(format_table(rows))
    _note_unscored(rows, hint=args.results is not None and args.frames is None)
    if args.csv:
        write_csv(args.csv, rows)
    if args.json:
        write_json(args.json, rows)
    return 0


def _note_unscored(rows: list[tuple[str, Metrics]], hint: bool) -> None:
    """Say on stderr which rows after each sequence's last scored frame were not counted, and which result
    rows TrackEval would refuse."""
    for name, m in rows:
        if name == COMBINED:
            continue
        if m.unscored_rows:
            print(f"note: {name}: {m.unscored_rows} result rows after frame {m.num_frames}, the last frame "
                  "scored, are not counted" + (" (--frames N scores up to frame N)" if hint else ""),
                  file=sys.stderr)
        if m.unscored_gt_rows:
            print(f"warning: {name}: {m.unscored_gt_rows} ground-truth rows after frame {m.num_frames}, the "
                  "last frame scored, are not counted: is the frame count (--frames, seqinfo.ini's "
                  "seqLength) right? TrackEval refuses such ground truth", file=sys.stderr)
        if m.non_pedestrian_rows:
            print(f"warning: {name}: {m.non_pedestrian_rows} result rows have a value above 1 in column 8 "
                  "(another class, or world coordinates), which TrackEval's MOTChallenge evaluation reads as "
                  "the class and refuses; here every row is scored as a pedestrian", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> list[tuple[str, Metrics]]:
    single = args.gt is not None or args.results is not None
    modes = [single, args.pairs is not None, args.results_dir is not None or args.gt_root is not None]
    if sum(modes) != 1:
        raise UserError("give one of: --gt and --results, --pairs, or --results-dir and --gt-root")
    for option, value in (("--frames", args.frames), ("--name", args.name)):
        if value is not None and not single:
            raise UserError(f"{option} applies to --gt/--results only")
    outputs = {"--csv": args.csv, "--json": args.json}
    if single:
        if args.gt is None or args.results is None:
            raise UserError("--gt and --results go together")
        check_output_files(outputs, {"--gt": args.gt, "--results": args.results})
        name = args.name or sequence_name(args.gt)
        if name == COMBINED:
            raise UserError(f"--name: {COMBINED} names the combined row of several sequences; choose another")
        return [(name, evaluate_sequence(args.gt, args.results, num_frames=args.frames, name=name,
                                         gt_format=args.gt_format))]
    if args.pairs is not None:
        pairs = _parse_pairs(args.pairs)
    else:
        pairs = _find_pairs(args.results_dir, args.gt_root)
    names = [p.name for p in pairs]
    if COMBINED in names or len(set(names)) != len(names):
        raise UserError(f"sequence names must be unique and not {COMBINED}: {', '.join(names)}")
    inputs = {f"{p.name}'s {role}": path for p in pairs
              for role, path in (("ground truth", p.gt_path), ("results", p.results_path))}
    check_output_files(outputs, inputs)
    return evaluate_many([p._replace(gt_format=args.gt_format) for p in pairs])


def sequence_name(gt_path: Path) -> str:
    """``.../<seq>/gt/gt.txt`` -> ``<seq>``; otherwise the file's stem."""
    parent = gt_path.resolve().parent
    return parent.parent.name if parent.name == "gt" and parent.parent.name else gt_path.stem


def _parse_pairs(specs: list[str]) -> list[SequencePair]:
    pairs = []
    for spec in specs:
        name, eq, paths = spec.partition("=")
        parts = paths.split(":")
        if not eq or not name or len(parts) != 2 or not all(parts):
            raise UserError(f"--pairs: expected NAME=GT:RES, got {spec!r}")
        pairs.append(SequencePair(name, Path(parts[0]), Path(parts[1])))
    return pairs


def _find_pairs(results_dir: Path | None, gt_root: Path | None) -> list[SequencePair]:
    if results_dir is None or gt_root is None:
        raise UserError("--results-dir and --gt-root go together")
    for label, folder in (("--results-dir", results_dir), ("--gt-root", gt_root)):
        if not folder.is_dir():
            raise UserError(f"{label} {folder}: not a folder")
    results = {res.stem: res for res in sorted(results_dir.glob("*.txt"))}
    with_gt = sorted(d.name for d in gt_root.iterdir() if (d / "gt" / "gt.txt").is_file())
    pairs = [SequencePair(seq, gt_root / seq / "gt" / "gt.txt", results[seq], _seq_length(gt_root / seq))
             for seq in with_gt if seq in results]
    if not pairs:
        raise UserError(f"no {results_dir}/<seq>.txt with a matching {gt_root}/<seq>/gt/gt.txt")
    # a crashed or misnamed run must not leave the combined score better without a word
    no_gt = [seq for seq in results if seq not in with_gt]
    no_results = [seq for seq in with_gt if seq not in results]
    if no_gt:
        print(f"warning: not scored, no {gt_root}/<seq>/gt/gt.txt (names are case-sensitive): "
              f"{', '.join(f'{seq}.txt' for seq in no_gt)}", file=sys.stderr)
    if no_results:
        print(f"warning: {len(no_results)} of {len(with_gt)} sequences with ground truth have no results "
              f"file in {results_dir} and are left out of {COMBINED}: {', '.join(no_results)}",
              file=sys.stderr)
    return pairs


def _seq_length(root: Path) -> int | None:
    """A sequence folder's seqLength (the frames TrackEval scores), None when its seqinfo.ini has none."""
    return read_sequence_info(root).length or None
