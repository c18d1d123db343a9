"""MOTChallenge text files: detections, results and ground truth (the only MOT reader/writer).

Rows are ``frame, id, x, y, w, h, conf[, x, y, z | class, visibility]`` with a top-left box (tlwh)
in pixels and frames counted from 1. Detection files carry id -1.
"""

from __future__ import annotations

import functools
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.io.files import naming_write_errors

__all__ = ["MAX_FRAME", "MAX_ID", "MotFormatError", "MotRows", "is_mot17_style", "read_mot", "write_results"]


class MotFormatError(ValueError):
    """A MOTChallenge file is missing, empty or malformed; the message says where."""


@dataclass(frozen=True)
class MotRows:
    """Rows of a MOTChallenge file, sorted by frame (stable).

    Attributes:
        frames: (N,) int frame numbers (>= 1).
        ids: (N,) int ids (-1 in detection files).
        boxes_tlwh: (N, 4) float boxes.
        scores: (N,) float confidence (column 7).
        extra: (N, K) remaining columns (K may be 0).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    extra: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def last_frame(self) -> int:
        """Highest frame number (0 when empty)."""
        return int(self.frames.max()) if len(self.frames) else 0

    def by_frame(self, first: int = 1, last: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, row_indices)`` for every frame from ``first`` to ``last``, empty ones included
        (memory in the rows, not in the frames: long empty stretches cost nothing)."""
        last = self.last_frame if last is None else last
        present, starts, counts = (a.tolist() for a in np.unique(self.frames, return_index=True,
                                                                  return_counts=True))
        k = int(np.searchsorted(present, first))
        empty = np.arange(0)
        empty.flags.writeable = False
        for frame in range(first, last + 1):
            if k < len(present) and present[k] == frame:
                yield frame, np.arange(starts[k], starts[k] + counts[k])
                k += 1
            else:
                yield frame, empty


MAX_FRAME = 10_000_000
"""Highest frame number a MOTChallenge file may hold (see :func:`read_mot`)."""
MAX_ID = 2**53
"""Largest magnitude of a track id a MOTChallenge file may hold (every integer up to it is a float)."""
MAX_COORD = 1e9
"""Largest magnitude of a box value (x, y, w, h) [px] a MOTChallenge file may hold (see :func:`read_mot`):
beyond it the values are not pixel coordinates, and squares of them overflow in the Kalman filter."""


def read_mot(path: str | Path, *, allow_empty: bool = False, validate_boxes: bool = True,
             note_unsorted: bool = True) -> MotRows:
    """Read a MOTChallenge file with clear errors.

    Raises:
        MotFormatError: missing file, empty file (unless ``allow_empty``), a row that is not
            numbers, too few columns, frame numbers < 1, not integers or above :data:`MAX_FRAME`,
            ids not integers or beyond :data:`MAX_ID`, NaN/inf values, or
            (with ``validate_boxes``) width or height <= 0 or a box value beyond :data:`MAX_COORD`. The
            message names file and line.
    """
    p = Path(path)
    if not p.is_file():
        what = "file not found" if not p.exists() else "a folder, not a file" if p.is_dir() else "not a file"
        raise MotFormatError(f"{p}: {what}")
    data, line_of = _load(p)
    if not len(data):
        if allow_empty:
            return _rows(np.empty((0, 7)))
        raise MotFormatError(f"{p}: file is empty")
    bad = ~np.isfinite(data[:, :7]).all(axis=1)
    if bad.any():
        raise MotFormatError(f"{p}:{line_of(int(np.argmax(bad)))}: NaN or infinite value")
    frames = data[:, 0]
    _check_frames(p, line_of, frames)
    _check_ids(p, line_of, data[:, 1])
    if validate_boxes:
        bad = (data[:, 4] <= 0) | (data[:, 5] <= 0)
        if bad.any():
            line = line_of(int(np.argmax(bad)))
            raise MotFormatError(f"{p}:{line}: box width and height must be > 0, got "
                                 f"{data[bad][0, 4]:g} x {data[bad][0, 5]:g}")
        bad = (np.abs(data[:, 2:6]) > MAX_COORD).any(axis=1)
        if bad.any():
            line = line_of(int(np.argmax(bad)))
            values = ", ".join(f"{v:g}" for v in data[bad][0, 2:6])
            raise MotFormatError(f"{p}:{line}: box values must lie within +-{MAX_COORD:.0e} px (pixel "
                                 f"coordinates), got x, y, w, h = {values}")
    if (np.diff(frames) < 0).any():
        # The official MOT17 public detections are not sorted by frame: sort, stable, and say so.
        if note_unsorted:
            print(f"note: {p}: rows are not sorted by frame; sorted them", file=sys.stderr)
        data = data[np.argsort(frames, kind="stable")]
    return _rows(data)


def _check_frames(p: Path, line_of: Callable[[int], int], frames: np.ndarray) -> None:
    """Frame numbers: integers from 1 to :data:`MAX_FRAME` (MotFormatError naming the first bad line)."""
    bad = (frames < 1) | (frames != np.round(frames))
    if bad.any():
        first = frames[bad][0]
        hint = " (MOTChallenge counts frames from 1: add 1 to a file counting from 0)" if first == 0 else ""
        raise MotFormatError(f"{p}:{line_of(int(np.argmax(bad)))}: frame must be an integer >= 1, "
                             f"got {first:g}{hint}")
    bad = frames > MAX_FRAME
    if bad.any():  # every frame up to the last is processed: a timestamp here would mean days of work
        raise MotFormatError(f"{p}:{line_of(int(np.argmax(bad)))}: frame {frames[bad][0]:.0f} is beyond "
                             f"{MAX_FRAME:,} (over 3 days at 30 Hz): the first column must count frames "
                             "from 1, not hold a timestamp")


def _check_ids(p: Path, line_of: Callable[[int], int], ids: np.ndarray) -> None:
    """Integer ids within +-:data:`MAX_ID` (beyond 2**53 a float holds no exact integer, beyond 2**63 int64
    wraps); a fractional id would be cut to another identity's."""
    bad = ids != np.round(ids)
    if bad.any():
        line = line_of(int(np.argmax(bad)))
        raise MotFormatError(f"{p}:{line}: id must be an integer, got {ids[bad][0]:g}")
    bad = np.abs(ids) > MAX_ID
    if bad.any():
        raise MotFormatError(f"{p}:{line_of(int(np.argmax(bad)))}: id {ids[bad][0]:.0f} is beyond "
                             f"+-{MAX_ID:,} (2**53)")


def _load(p: Path) -> tuple[np.ndarray, Callable[[int], int]]:
    """The file's rows as an (N, >= 7) array (a 7th column of 1.0 added to 6-column files) and a function
    from row index to line number. Well-formed files go through NumPy's reader (some ten times faster than
    Python's float() per value, and memory about the size of the result: a 1 GB file must not take ten);
    anything it refuses is parsed line by line, which names the line and what is wrong with it."""
    with p.open(encoding="utf-8-sig", errors="replace") as f:  # -sig: a spreadsheet's byte-order mark
        first = next((s for s in map(str.strip, f) if s), None)
    line_of = functools.partial(_nth_row_line, p)
    if first is None:
        return np.empty((0, 7)), line_of
    sep = "," if "," in first else None
    try:
        data = np.loadtxt(p, delimiter=sep, ndmin=2, encoding="utf-8-sig", comments=None, dtype=np.float64)
    except (ValueError, UnicodeDecodeError):  # blank-but-spaces lines, trailing commas, ragged rows, text
        data = None
    if data is None or data.shape[1] < 6:
        return _parse(p, sep)
    if data.shape[1] == 6:
        data = np.column_stack([data, np.ones(len(data))])
    return data, line_of


def _nth_row_line(p: Path, row: int) -> int:
    """Line number of row ``row`` (0-based, blank lines not counted): found again only for an error."""
    with p.open(encoding="utf-8-sig", errors="replace") as f:
        k = -1
        for lineno, ln in enumerate(f, 1):
            if ln.strip():
                k += 1
                if k == row:
                    return lineno
    raise IndexError(row)


def _parse(p: Path, sep: str | None) -> tuple[np.ndarray, Callable[[int], int]]:
    """Line-by-line parse with an error naming the line (see :func:`_load`); values and line numbers are
    kept in typed arrays, not lists of floats."""
    values, numbers = array("d"), array("q")
    width = None
    with p.open(encoding="utf-8-sig", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            ln = raw.strip()
            if not ln:
                continue
            parts = ln.split(sep)
            if sep and len(parts) > 1 and not parts[-1].strip():
                parts = parts[:-1]  # a trailing comma (TrackEval reads such files too)
            try:
                vals = [float(v) for v in parts]
            except ValueError:
                raise MotFormatError(f"{p}:{lineno}: not a row of numbers: {ln[:60]!r}") from None
            if len(vals) < 6:
                raise MotFormatError(f"{p}:{lineno}: expected at least 6 comma-separated columns "
                                     f"(frame,id,x,y,w,h[,conf,...]), got {len(vals)}")
            if len(vals) == 6:
                vals.append(1.0)
            if width is None:
                width, first = len(vals), lineno
            elif len(vals) != width:  # padding or cutting shifts meanings (MOT17 gt: a row without class)
                raise MotFormatError(f"{p}:{lineno}: {len(vals)} columns, line {first} has {width}: every "
                                     "row needs the same columns")
            values.extend(vals)
            numbers.append(lineno)
    data = np.frombuffer(values, dtype=np.float64).reshape(-1, width or 7)
    return data, numbers.__getitem__


def _rows(data: np.ndarray) -> MotRows:
    return MotRows(
        frames=data[:, 0].astype(np.int64),
        ids=data[:, 1].astype(np.int64),
        boxes_tlwh=data[:, 2:6].copy(),
        scores=data[:, 6].copy(),
        extra=data[:, 7:].copy(),
    )


def is_mot17_style(gt: MotRows) -> bool:
    """Ground truth of 9 columns whose last two are an integer class >= 1 and a visibility in [0, 1] (MOT17);
    MOT15's 10 columns end in world coordinates instead (or -1)."""
    if gt.extra.shape[1] != 2 or len(gt) == 0:
        return False
    cls, vis = gt.extra[:, 0], gt.extra[:, 1]
    return bool((cls >= 1).all() and (cls == np.round(cls)).all() and ((vis >= 0) & (vis <= 1)).all())


def write_results(path: str | Path, frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray,
                  scores: np.ndarray | None = None, world: np.ndarray | None = None) -> None:
    """Write ``frame,id,x,y,w,h,conf,-1,-1,-1`` rows (MOTChallenge results), sorted by frame then id.

    ``world``: optional (N, 3) positions [m] for the format's world-coordinate columns (8-10, which 2D
    evaluation ignores), written in mm steps where all three are finite; -1,-1,-1 elsewhere, as without.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    frames, ids = np.asarray(frames), np.asarray(ids)
    boxes = np.asarray(boxes_tlwh, dtype=np.float64).reshape(-1, 4)
    conf = np.ones(len(frames)) if scores is None else np.asarray(scores, dtype=np.float64)
    order = np.lexsort((ids, frames))
    tails = None if world is None else _world_columns(np.asarray(world, dtype=np.float64).reshape(-1, 3))
    with naming_write_errors(p), p.open("w") as fh:
        # a block of rows at a time as Python numbers: formatting NumPy scalars row by row took 6 us a row
        for k in range(0, len(order), _WRITE_BLOCK):
            rows = order[k:k + _WRITE_BLOCK]
            columns = (frames.take(rows).astype(np.int64).tolist(), ids.take(rows).astype(np.int64).tolist(),
                       *boxes.take(rows, axis=0).T.tolist(), conf.take(rows).tolist(),
                       [_NO_WORLD] * len(rows) if tails is None else [tails[r] for r in rows.tolist()])
            fh.writelines(f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.4f},{t}\n"
                          for f, i, x, y, w, h, c, t in zip(*columns, strict=True))


_NO_WORLD = "-1,-1,-1"


def _world_columns(world: np.ndarray) -> list[str]:
    """The world-coordinate columns of each row: ``x,y,z`` [m, 3 decimals], or ``-1,-1,-1`` without."""
    ok = np.isfinite(world).all(axis=1).tolist()
    return [f"{x:.3f},{y:.3f},{z:.3f}" if good else _NO_WORLD
            for good, (x, y, z) in zip(ok, world.tolist(), strict=True)]


_WRITE_BLOCK = 65_536
