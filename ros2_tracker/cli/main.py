"""Entry point of ``ros2-tracker``: dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import sys

from ros2_tracker.cli.errors import USER_ERRORS, is_user_os_error

# subcommand name -> module under ros2_tracker.cli (imported lazily: heavy dependencies stay optional)
SUBCOMMANDS = {
    "track": "track",
    "evaluate": "evaluate",
    "demo": "demo",
    "launch": "launch",
    "replay": "replay",
    "results": "results",
    "train-reid": "train_reid",
    "train-detector": "train_detector",
    "follow": "follow",
    "train-sot": "train_sot",
    "train-motion": "train_motion",
    "build-engine": "engine",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="ros2-tracker", description="ROS 2 multi-object tracking")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(f"ros2_tracker.cli.{module}")
        except ModuleNotFoundError as exc:  # an optional subcommand whose extra is not installed
            if exc.name and exc.name.startswith("ros2_tracker.cli."):
                continue
            sub.add_parser(name, help=f"(unavailable: {exc.name} is not installed)")
            continue
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    late = getattr(args, "late_positionals", None)  # name:=value after an option (launch)
    if extra and late and not any(e.startswith("-") for e in extra):
        setattr(args, late, [*getattr(args, late), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "run"):
        parser.error(f"{args.command}: unavailable in this installation")
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        return _user_error(args.command, exc)
    except OSError as exc:
        if not is_user_os_error(exc):
            raise
        return _user_error(args.command, exc)
    except KeyboardInterrupt:
        return 130


def _user_error(command: str, exc: BaseException) -> int:
    """Print a user error's first line on stderr; the exit status 2."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"ros2-tracker {command}: error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
