"""Camera calibration files -> the image-to-ground homography used by the tracker's ground-plane gate.

Supported: Tsai calibration XML as distributed with PETS 2009 (``<Camera><Geometry .../><Intrinsic .../>
<Extrinsic .../></Camera>``, world units millimetres), and a plain 3x3 homography (9 numbers, text or
YAML ``ground_homography: [...]``).

The Tsai model has radial lens distortion, which no homography can express; :class:`TsaiCamera`
maps pixels to the ground exactly (undistortion, then ray-plane intersection), and
:func:`fit_ground_homography` fits the 3x3 homography that best reproduces that mapping over the
image below the horizon (least squares), which is what ``TrackerConfig.ground_homography`` takes.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.core.config import ConfigError

__all__ = ["TsaiCamera", "fit_ground_homography", "load_ground_homography", "read_tsai_xml"]


@dataclass(frozen=True)
class TsaiCamera:
    """Tsai (1987) camera: pinhole + first-order radial distortion.

    Attributes:
        focal: effective focal length f [mm].
        kappa1: radial distortion coefficient [1/mm^2].
        cx, cy: principal point [px].
        sx: horizontal scale factor.
        dpx, dy: effective pixel size in x (dx * ncx / nfx) and in y [mm/px].
        rotation: 3x3 world-to-camera rotation R.
        translation: world-to-camera translation T [world units, mm for PETS].
        width, height: image size [px].
    """

    focal: float
    kappa1: float
    cx: float
    cy: float
    sx: float
    dpx: float
    dy: float
    rotation: np.ndarray
    translation: np.ndarray
    width: int
    height: int

    def image_to_ground(self, points_px: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) ground-plane (Z = 0) coordinates [world units]; NaN above the horizon."""
        p = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        xd = (p[:, 0] - self.cx) * self.dpx / self.sx
        yd = (p[:, 1] - self.cy) * self.dy
        k = 1.0 + self.kappa1 * (xd * xd + yd * yd)
        rays = np.stack([xd * k, yd * k, np.full(len(p), self.focal)], axis=1)  # camera frame
        r_t = self.rotation.T
        origin = -r_t @ self.translation  # camera centre in the world
        dirs = rays @ r_t.T  # = (R^T ray) per row
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = -origin[2] / dirs[:, 2]
        out = origin[:2] + lam[:, None] * dirs[:, :2]
        out[~(lam > 0)] = np.nan  # the ray never reaches the ground in front of the camera
        return out

    def ground_to_image(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 2) ground points (Z = 0) -> (N, 2) pixels, distortion included."""
        g = np.asarray(points_world, dtype=np.float64).reshape(-1, 2)
        pc = np.c_[g, np.zeros(len(g))] @ self.rotation.T + self.translation
        xu, yu = self.focal * pc[:, 0] / pc[:, 2], self.focal * pc[:, 1] / pc[:, 2]
        ru = np.hypot(xu, yu)
        rd = _undistorted_to_distorted_radius(ru, self.kappa1)
        scale = np.where(ru > 0, rd / np.where(ru > 0, ru, 1.0), 1.0)
        return np.stack([xu * scale * self.sx / self.dpx + self.cx, yu * scale / self.dy + self.cy], axis=1)


def _undistorted_to_distorted_radius(ru: np.ndarray, kappa1: float) -> np.ndarray:
    """Solve rd * (1 + kappa1 rd^2) = ru for rd by Newton iterations (rd ~ ru for small distortion)."""
    rd = ru.copy()
    for _ in range(20):
        f = rd * (1.0 + kappa1 * rd * rd) - ru
        rd = rd - f / (1.0 + 3.0 * kappa1 * rd * rd)
    return rd


def read_tsai_xml(path: str | Path) -> TsaiCamera:
    """Read a PETS 2009 / Tsai calibration XML file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"calibration file not found: {p}")
    try:
        root = ET.parse(p).getroot()
        geo, intr, ext = (root.find(tag) for tag in ("Geometry", "Intrinsic", "Extrinsic"))
        if geo is None or intr is None or ext is None:
            raise ConfigError(f"{p}: expected <Geometry>, <Intrinsic> and <Extrinsic> (Tsai calibration)")
        a, b, g = (_number(ext, k) for k in ("rx", "ry", "rz"))
        # positive: a focal length, a pixel or an image of no size maps nothing to the ground
        return TsaiCamera(
            focal=_number(intr, "focal", positive=True), kappa1=_number(intr, "kappa1"),
            cx=_number(intr, "cx"), cy=_number(intr, "cy"), sx=_number(intr, "sx", positive=True),
            dpx=_number(geo, "dpx", positive=True), dy=_number(geo, "dy", positive=True),
            rotation=_rotation_zyx(a, b, g),
            translation=np.array([_number(ext, k) for k in ("tx", "ty", "tz")]),
            width=int(_number(geo, "width", positive=True)),
            height=int(_number(geo, "height", positive=True)))
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: not a valid Tsai calibration file ({exc})") from None


def _number(element: ET.Element, name: str, positive: bool = False) -> float:
    """The finite (with ``positive``, also > 0) number in attribute ``name`` of a calibration element;
    ValueError naming it otherwise."""
    text = element.get(name)
    if text is None:
        raise ValueError(f"<{element.tag}> has no {name}=\"...\" attribute")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"<{element.tag} {name}=\"{text}\"> is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"<{element.tag} {name}=\"{text}\"> is not finite")
    if positive and value <= 0:
        raise ValueError(f"<{element.tag} {name}=\"{text}\"> must be positive")
    return value


def _rotation_zyx(rx: float, ry: float, rz: float) -> np.ndarray:
    """Tsai's rotation R = Rz(rz) Ry(ry) Rx(rx) (world to camera)."""
    ca, sa, cb, sb, cg, sg = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    return np.array([[cb * cg, cg * sa * sb - ca * sg, sa * sg + ca * cg * sb],
                     [cb * sg, sa * sb * sg + ca * cg, ca * sb * sg - cg * sa],
                     [-sb, cb * sa, ca * cb]])


def fit_ground_homography(camera: TsaiCamera, *, metres_per_unit: float = 0.001,
                          grid: int = 40) -> np.ndarray:
    """3x3 homography (pixels -> ground metres) fitted to the exact camera mapping.

    Image points on a grid x grid lattice whose rays hit the ground are mapped exactly, then the
    homography is fitted by the normalised direct linear transform (least squares).
    """
    u, v = np.meshgrid(np.linspace(0, camera.width - 1, grid), np.linspace(0, camera.height - 1, grid))
    img = np.stack([u.ravel(), v.ravel()], axis=1)
    ground = camera.image_to_ground(img) * metres_per_unit
    ok = np.isfinite(ground).all(axis=1)
    if ok.sum() < 8:
        raise ConfigError("calibration: too little of the image sees the ground to fit a homography")
    try:
        return _dlt(img[ok], ground[ok])
    except np.linalg.LinAlgError as exc:
        raise ConfigError(f"calibration: no homography fits the camera's ground points ({exc})") from None


def _dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares homography src -> dst with Hartley normalisation."""
    def norm(pts):
        c = pts.mean(axis=0)
        s = np.sqrt(2) / np.mean(np.linalg.norm(pts - c, axis=1))
        return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])

    ts, td = norm(src), norm(dst)
    s = np.c_[src, np.ones(len(src))] @ ts.T
    d = np.c_[dst, np.ones(len(dst))] @ td.T
    rows = []
    for (x, y, _), (xp, yp, _) in zip(s, d, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, xp * x, xp * y, xp])
        rows.append([0, 0, 0, -x, -y, -1, yp * x, yp * y, yp])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = np.linalg.inv(td) @ vt[-1].reshape(3, 3) @ ts
    # scale as usual (corner entry 1), but with the sign that puts the fitted ground points in front of the
    # camera (w > 0): dividing by h[2, 2] alone flips it when pixel (0, 0) is sky, and then every point on
    # the ground reads as above the horizon
    w = np.c_[src, np.ones(len(src))] @ h[2]
    return h * (np.sign(np.mean(w)) / abs(h[2, 2]))


def load_ground_homography(path: str | Path) -> list[float]:
    """9 numbers (row major, pixels -> metres) from a Tsai XML file or a file holding 9 numbers."""
    p = Path(path)
    if p.suffix.lower() == ".xml":
        return fit_ground_homography(read_tsai_xml(p)).ravel().tolist()
    if not p.is_file():
        raise ConfigError(f"calibration file not found: {p}")
    import yaml

    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        doc = None  # reported below with what is expected
    values = doc.get("ground_homography") if isinstance(doc, dict) else doc
    if isinstance(values, str):
        values = values.split()
    try:
        flat = [float(x) for x in np.asarray(values, dtype=object).ravel()]
    except (TypeError, ValueError):
        flat = []
    if len(flat) != 9:
        raise ConfigError(f"{p}: expected a Tsai calibration .xml or 9 numbers (3x3 homography)")
    return flat


def orient_homography(values: list[float], boxes_xyxy: np.ndarray,
                      flip_share: float = 0.5) -> tuple[list[float], bool]:
    """The 9 numbers of an image-to-ground homography with the sign that puts ``boxes_xyxy``'s foot points
    in front of the camera (w > 0), and whether it was flipped: flipped when more than ``flip_share`` of
    them are behind it (w < 0). A homography is defined up to scale, sign included; the tracker reads
    w <= 0 as above the horizon, where nothing is near anything."""
    from ros2_tracker.core.costs import footpoints

    h = np.asarray(values, dtype=np.float64).reshape(3, 3)
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return list(values), False
    w = np.c_[footpoints(b), np.ones(len(b))] @ h[2]
    behind, front = np.count_nonzero(w < 0), np.count_nonzero(w > 0)
    if behind > flip_share * (behind + front):
        return (-h).ravel().tolist(), True
    return list(values), False
