"""MOTChallenge sequence folders: ``seqinfo.ini``, ``img1/``, ``det/*.txt``, ``gt/gt.txt``."""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

from ros2_tracker.io.mot import MAX_FRAME, MotFormatError

__all__ = ["SequenceInfo", "find_sequence_root", "read_sequence_info"]


@dataclass(frozen=True)
class SequenceInfo:
    """What a MOTChallenge folder holds.

    Attributes:
        root: the sequence folder.
        name: sequence name.
        fps: frame rate [Hz] (``frameRate`` in seqinfo.ini; 30 when unknown).
        length: number of frames (0 when unknown).
        width, height: image size [px] (0 when unknown).
        image_dir: folder of the frames (may not exist).
        image_ext: frame file extension, e.g. ``.jpg``.
        fps_known: False when the frame rate was not in seqinfo.ini.
    """

    root: Path
    name: str
    fps: float
    length: int
    width: int
    height: int
    image_dir: Path
    image_ext: str
    fps_known: bool = True

    @property
    def gt_path(self) -> Path:
        """``gt/gt.txt`` (may not exist)."""
        return self.root / "gt" / "gt.txt"

    def detection_path(self, name: str | None = None) -> Path:
        """``det/<name>``; by default ``det/det.txt``, else the first ``det/*.txt``."""
        det_dir = self.root / "det"
        if name:
            return det_dir / name
        if (det_dir / "det.txt").is_file():
            return det_dir / "det.txt"
        found = sorted(det_dir.glob("*.txt"))
        if not found:
            raise MotFormatError(f"{det_dir}: no detection file (det/*.txt)")
        return found[0]

    def frame_path(self, frame: int) -> Path:
        """Image file of a frame (1-based), ``img1/000001.jpg`` style."""
        return self.image_dir / f"{frame:06d}{self.image_ext}"

    @property
    def has_images(self) -> bool:
        """True when the first frame's image exists."""
        return self.frame_path(1).is_file()


# Frame rates a sequence may have [Hz]. Beyond them a frame's stamp (frame - 1) / fps loses its meaning: at
# inf every frame is at 0 s, at 1e-300 Hz the stamps overflow.
FPS_RANGE = (1e-3, 1e4)


def fps_problem(fps: float) -> str | None:
    """Why ``fps`` is not a usable frame rate (see ``FPS_RANGE``), or None when it is."""
    lo, hi = FPS_RANGE
    if math.isfinite(fps) and lo <= fps <= hi:
        return None
    return f"must be a frame rate between {lo:g} and {hi:g} Hz, got {fps:g}"


def read_sequence_info(root: str | Path) -> SequenceInfo:
    """Read a sequence folder's ``seqinfo.ini`` (all fields optional)."""
    r = Path(root)
    if not r.is_dir():
        raise MotFormatError(f"{r}: sequence folder not found")
    cp = configparser.ConfigParser(interpolation=None)  # a name may hold a "%"
    ini = r / "seqinfo.ini"
    sec: dict[str, str] = {}
    if ini.is_file():
        try:  # bytes that are not UTF-8 (a name in another encoding) are replaced, not fatal
            cp.read_string(ini.read_text(encoding="utf-8", errors="replace"), source=str(ini))
        except configparser.Error as exc:
            raise MotFormatError(f"{ini}: not a valid seqinfo.ini: {exc}") from None
        sec = dict(cp["Sequence"]) if cp.has_section("Sequence") else {}
    try:
        fps = float(sec.get("framerate", 0) or 0)
        problem = fps_problem(fps) if fps != 0 else None  # 0 or missing: unknown (30 Hz, fps_known False)
        if problem:
            raise MotFormatError(f"{ini}: frameRate {problem}")
        return SequenceInfo(
            root=r,
            name=_safe_name(sec.get("name", ""), r, ini),
            fps=fps if fps > 0 else 30.0,
            length=_length(ini, sec.get("seqlength", "")),
            width=int(sec.get("imwidth", 0) or 0),
            height=int(sec.get("imheight", 0) or 0),
            image_dir=r / sec.get("imdir", "img1"),
            image_ext=sec.get("imext", ".jpg"),
            fps_known=fps > 0,
        )
    except MotFormatError:
        raise
    except ValueError as exc:
        raise MotFormatError(f"{ini}: bad value: {exc}") from None


def _safe_name(name: str, root: Path, ini: Path) -> str:
    r"""seqinfo.ini's name (outputs are named after it), the folder's when empty.

    Raises:
        MotFormatError: a name that is a path (``/``, ``\\``, ``.``, ``..``): results would be written
            outside the output folder.
    """
    name = name.strip()
    if not name:
        return root.name
    if "/" in name or "\\" in name or name in (".", ".."):
        raise MotFormatError(f"{ini}: name {name!r} is a path, not a sequence name")
    return name


def _length(ini: Path, value: str) -> int:
    """seqLength: 0 (unknown) to ``MAX_FRAME`` frames."""
    n = int(value or 0)
    if not 0 <= n <= MAX_FRAME:
        raise MotFormatError(f"{ini}: seqLength must be between 0 and {MAX_FRAME:,}, got {n}")
    return n


def find_sequence_root(det_path: str | Path) -> Path | None:
    """The sequence folder of ``<seq>/det/<file>.txt`` when it has a seqinfo.ini, else None: beside the
    path as given first (a det file linked into a MOT tree belongs to that tree), then beside the file
    a link points to."""
    for p in dict.fromkeys((Path(det_path).absolute(), Path(det_path).resolve())):
        for cand in (p.parent.parent, p.parent):
            if (cand / "seqinfo.ini").is_file():
                return cand
    return None
