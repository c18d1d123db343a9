"""``ros2-tracker launch``: start the nodes of ``launch/<name>.launch.py`` as processes (no ROS 2 launch).

    ros2-tracker launch pipeline|tracker|sot|FILE.launch.py [name:=value ...] [--show-args] [--dry-run]

The launch file is read statically (:mod:`ros2_tracker.launching`), so the same nodes start with the
same parameter files, parameters and remappings as with ``ros2 launch ros2_tracker <name>.launch.py``.
Each node's output lines are prefixed with its name. Ctrl-C (SIGINT) or SIGTERM is forwarded to every
node; nodes still running after ``--sigint-timeout`` get SIGTERM, then SIGKILL after
``--sigterm-timeout``. When the replay ends (``pipeline``), the other nodes are stopped the same way.
Exit status: 0 when every node exited cleanly, 1 otherwise, 2 for an unknown or invalid argument.

Examples:
    ros2-tracker launch tracker namespace:=cam1
    ros2-tracker launch pipeline source:=../shared/data/TUD-Campus record:=true bag:=out/bag
    ros2-tracker launch pipeline --show-args
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from ros2_tracker.cli.errors import UserError
from ros2_tracker.launching import (
    LaunchArgumentError,
    LaunchFile,
    LaunchFileError,
    NodeSpec,
    Supervisor,
    package_share_directory,
    parse_launch_arguments,
    parse_launch_file,
)

__all__ = ["add_parser", "clean_exit", "resolve_launch_file", "run"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("launch", help="start the nodes of a launch file as processes (no ROS 2 launch)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("launch_file", metavar="LAUNCH", help="pipeline, tracker, sot, or a path to a *.launch.py "
                   "file")
    p.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    p.add_argument("--show-args", action="store_true", help="list the launch file's arguments and exit")
    p.add_argument("--dry-run", action="store_true", help="print each node's command line and exit")
    p.add_argument("--sigint-timeout", type=float, default=5.0, metavar="S",
                   help="seconds between SIGINT and SIGTERM at shutdown (default 5)")
    p.add_argument("--sigterm-timeout", type=float, default=3.0, metavar="S",
                   help="seconds between SIGTERM and SIGKILL at shutdown (default 3)")
    p.set_defaults(run=run, late_positionals="arguments")  # name:=value may follow the options too
    return p


def resolve_launch_file(name: str) -> Path:
    """``pipeline`` / ``tracker`` -> ``<share>/launch/<name>.launch.py``; a path is taken as is."""
    p = Path(name)
    if p.suffix == ".py" or p.exists():
        if not p.is_file():
            raise UserError(f"launch file not found: {p}")
        return p
    try:
        share = package_share_directory("ros2_tracker")
    except LaunchFileError as exc:
        raise UserError(str(exc)) from None
    path = share / "launch" / f"{name}.launch.py"
    if not path.is_file():
        known = sorted(f.name.removesuffix(".launch.py") for f in (share / "launch").glob("*.launch.py"))
        raise UserError(f"no launch file {name!r} (known: {', '.join(known)}; or give a path)")
    return path


def _format_arguments(info: LaunchFile) -> str:
    lines = [f"Arguments of {info.path} (name:=value):"]
    for a in info.arguments.values():
        default = "(required)" if a.default is None else f"default {info.defaults()[a.name]!r}"
        choices = f", one of {'|'.join(a.choices)}" if a.choices else ""
        lines.append(f"  {a.name}: {a.description} [{default}{choices}]")
    return "\n".join(lines)


def _checked_specs(info: LaunchFile, arguments: list[str]) -> list[NodeSpec]:
    try:
        specs = info.node_specs(parse_launch_arguments(arguments))
    except (LaunchArgumentError, LaunchFileError) as exc:
        raise UserError(str(exc)) from None
    for s in specs:  # a missing parameter file would only be a FATAL line in the node's output
        missing = [str(f) for f in s.params_files if not Path(f).is_file()]
        if missing:
            raise UserError(f"{s.name}: parameter file not found: {', '.join(missing)}")
    for s in specs:
        if s.module == "replay_node" and not str(s.params.get("source", "x")):
            raise UserError("the replay needs source:=PATH (a MOTChallenge folder, video or bag), or "
                            "camera:=true")
    started = []
    for s in specs:
        if s.executable and not Path(s.executable).is_file():
            print(f"[launch] warning: {s.executable} is not installed; not starting {s.name}",
                  file=sys.stderr)
            continue
        started.append(s)
    return started


def clean_exit(sup: Supervisor) -> bool:
    """True when every node exited with 0, or by the SIGINT/SIGTERM it was asked to stop with."""
    codes = sup.exit_codes()
    stopped = (-signal.SIGINT, -signal.SIGTERM)
    return all(rc == 0 or (rc in stopped and sup.stop_requested) for rc in codes.values())


def run(args: argparse.Namespace) -> int:
    """Execute ``launch``."""
    timeouts = (("--sigint-timeout", args.sigint_timeout), ("--sigterm-timeout", args.sigterm_timeout))
    for option, value in timeouts:
        if not (math.isfinite(value) and value >= 0):  # a node that hangs must still be stopped
            raise UserError(f"{option} must be a finite number of seconds >= 0, got {value}")
    try:
        info = parse_launch_file(resolve_launch_file(args.launch_file))
    except LaunchFileError as exc:
        raise UserError(str(exc)) from None
    if args.show_args:
        print(_format_arguments(info))
        return 0
    specs = _checked_specs(info, args.arguments)
    if args.dry_run:
        for s in specs:
            print(f"{s.name}: {' '.join(s.command())}")
        return 0
    if not specs:
        raise UserError("no node to start with these arguments")
    sup = Supervisor()
    with sup.forwarding_signals():  # before the first node starts: a signal while starting stops them all
        sup.start_all(specs)
        sup.supervise(sigint_timeout=args.sigint_timeout, sigterm_timeout=args.sigterm_timeout)
    sup.shutdown(sigint_timeout=args.sigint_timeout, sigterm_timeout=args.sigterm_timeout)
    for line in sup.report().splitlines():
        sup.log(line)
    return 0 if clean_exit(sup) else 1
