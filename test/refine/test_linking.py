"""Tracklet linking on real ground-truth tracks split artificially, with real OSNet embeddings."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.io.mot import read_mot
from ros2_tracker.refine import RefineConfig, refine_tracks
from ros2_tracker.refine.linking import link_cost_matrix, link_tracklets, summarise_tracklets

FPS = 7.0  # PETS09-S3MF1
MOTION_ONLY = RefineConfig(link_without_appearance=True, interpolate=False)


def _gt():
    return read_mot(require_shared("data", "PETS09-S3MF1", "gt", "gt.txt"), validate_boxes=False)


def _piece(gt, gt_id, first, last, new_id):
    """Rows of ground-truth identity ``gt_id`` in frames first..last, relabelled ``new_id``."""
    keep = (gt.ids == gt_id) & (gt.frames >= first) & (gt.frames <= last)
    assert keep.sum() == last - first + 1, "the test expects a track present in every frame of the piece"
    return gt.frames[keep], np.full(int(keep.sum()), new_id), gt.boxes_tlwh[keep]


def _rows(*pieces):
    return tuple(np.concatenate(x) for x in zip(*pieces, strict=True))


def _long_ids(gt, n=2):
    ids, counts = np.unique(gt.ids, return_counts=True)
    return ids[np.argsort(-counts)][:n]


def _far_pair(gt):
    """The longest identity and the one farthest from it in the last frame."""
    a = _long_ids(gt)[0]
    last = gt.frames.max()
    here = gt.frames == last
    centre = {int(i): b[:2] + b[2:] / 2 for i, b in zip(gt.ids[here], gt.boxes_tlwh[here], strict=True)}
    b = max(centre, key=lambda i: np.linalg.norm(centre[i] - centre[int(a)]))
    return int(a), b


def _span(gt, gt_id):
    f = gt.frames[gt.ids == gt_id]
    return int(f.min()), int(f.max())


@pytest.fixture(scope="module")
def pets_embeddings():
    """OSNet embeddings of every PETS09-S3MF1 ground-truth box, keyed by (frame, gt id)."""
    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.io.video import open_frame_source

    model = require_shared("models", "osnet_x0_25_msmt17.onnx")
    embedder = create_embedder(EmbedderConfig(model_path=str(model)))
    gt = _gt()
    wanted = {*_long_ids(gt, 2).tolist(), *_far_pair(gt)}
    table = {}
    for frame in open_frame_source(require_shared("data", "PETS09-S3MF1")).frames():
        rows = np.flatnonzero((gt.frames == frame.number) & np.isin(gt.ids, list(wanted)))
        if frame.image is None or not len(rows) or frame.number % 3:  # every third frame is plenty
            continue
        feats = embedder.embed(frame.image, tlwh_to_xyxy(gt.boxes_tlwh[rows]))
        table.update({(frame.number, int(gt.ids[r])): f for r, f in zip(rows, feats, strict=True)})
    return table


def _embeddings(table, frames, gt_ids, dim=512):
    return np.stack([table.get((int(f), int(g)), np.zeros(dim)) for f, g in zip(frames, gt_ids, strict=True)])


@pytest.mark.data
def test_two_halves_of_a_real_track_are_joined_by_motion_alone():
    gt = _gt()
    a = _long_ids(gt)[0]
    first, last = _span(gt, a)
    mid = (first + last) // 2
    frames, ids, boxes = _rows(_piece(gt, a, first, mid, 5), _piece(gt, a, mid + 5, last, 2))  # 0.71 s gap
    out = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY)
    assert set(out.ids.tolist()) == {5}  # unified, with the earliest tracklet's id (not the smaller)
    assert out.id_map == {5: 5, 2: 5}
    assert len(out.links) == 1 and out.links[0].gap_s == pytest.approx(5 / FPS)


@pytest.mark.data
def test_without_appearance_links_are_off_by_default():
    gt = _gt()
    a = _long_ids(gt)[0]
    first, last = _span(gt, a)
    mid = (first + last) // 2
    frames, ids, boxes = _rows(_piece(gt, a, first, mid, 1), _piece(gt, a, mid + 5, last, 2))
    assert len(refine_tracks(frames, ids, boxes, fps=FPS).links) == 0


@pytest.mark.data
def test_halves_joined_with_real_appearance_and_different_people_kept_apart(pets_embeddings):
    gt = _gt()
    a, b = _long_ids(gt)
    fa, la = _span(gt, a)
    fb, lb = _span(gt, b)
    mid_a, mid_b = (fa + la) // 2, (fb + lb) // 2
    pieces = [_piece(gt, a, fa, mid_a, 1), _piece(gt, a, mid_a + 4, la, 2),
              _piece(gt, b, fb, mid_b, 3), _piece(gt, b, mid_b + 4, lb, 4)]
    frames, ids, boxes = _rows(*pieces)
    gt_of = {1: a, 2: a, 3: b, 4: b}
    emb = _embeddings(pets_embeddings, frames, [gt_of[i] for i in ids])
    out = refine_tracks(frames, ids, boxes, fps=FPS, embeddings=emb, config=RefineConfig(interpolate=False))
    assert out.id_map == {1: 1, 2: 1, 3: 3, 4: 3}


@pytest.mark.data
def test_two_different_identities_far_apart_are_not_joined(pets_embeddings):
    gt = _gt()
    a, b = _far_pair(gt)
    fa, la = _span(gt, a)
    fb, lb = _span(gt, b)
    cut = max(fa, fb) + (min(la, lb) - max(fa, fb)) // 2
    # a's first part, then b's second part after a 1 s gap: the person "jumps" to b's place
    frames, ids, boxes = _rows(_piece(gt, a, fa, cut, 1), _piece(gt, b, cut + 7, lb, 2))
    jump = np.linalg.norm(boxes[ids == 2][0, :2] - boxes[ids == 1][-1, :2]) / boxes[ids == 1][-1, 3]
    assert jump > 1.0, "the test needs two people more than a box height apart"
    assert len(refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY).links) == 0
    emb = _embeddings(pets_embeddings, frames, np.where(ids == 1, a, b))
    loose = RefineConfig(motion_gate=10.0, max_height_ratio=3.0, interpolate=False)
    assert len(refine_tracks(frames, ids, boxes, fps=FPS, config=loose.replace(link_without_appearance=True))
               .links) == 1  # the control: these loose gates let motion alone link them
    assert len(refine_tracks(frames, ids, boxes, fps=FPS, embeddings=emb, config=loose).links) == 0


@pytest.mark.data
@pytest.mark.parametrize("overlap", [0, 1, 3])
def test_overlapping_tracklets_are_never_linked(overlap):
    gt = _gt()
    a = _long_ids(gt)[0]
    first, last = _span(gt, a)
    mid = (first + last) // 2
    # the second piece starts on (0) or before (1, 3) the first one's last frame
    frames, ids, boxes = _rows(_piece(gt, a, first, mid, 1), _piece(gt, a, mid - overlap, last, 2))
    loose = MOTION_ONLY.replace(motion_gate=100.0, max_height_ratio=100.0)
    tr = summarise_tracklets(frames, ids, boxes, fps=FPS, config=loose)
    assert np.isinf(link_cost_matrix(tr, fps=FPS, config=loose)).all()
    assert link_tracklets(tr, fps=FPS, config=loose)[1] == []


@pytest.mark.data
def test_classes_are_never_mixed():
    gt = _gt()
    a = _long_ids(gt)[0]
    first, last = _span(gt, a)
    mid = (first + last) // 2
    frames, ids, boxes = _rows(_piece(gt, a, first, mid, 1), _piece(gt, a, mid + 3, last, 2))
    classes = np.where(ids == 1, 0, 2)
    assert refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY, classes=classes).links == []
    same = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY, classes=np.zeros_like(classes))
    assert len(same.links) == 1  # the control: the same pieces with one class are linked


@pytest.mark.data
def test_chains_take_the_earliest_id_and_gaps_are_bounded():
    gt = _gt()
    a = _long_ids(gt)[0]
    first, last = _span(gt, a)
    t1, t2 = first + (last - first) // 3, first + 2 * (last - first) // 3
    frames, ids, boxes = _rows(_piece(gt, a, first, t1, 9), _piece(gt, a, t1 + 3, t2, 4),
                               _piece(gt, a, t2 + 3, last, 1))
    out = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY)
    assert out.id_map == {9: 9, 4: 9, 1: 9} and len(out.links) == 2
    short = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY.replace(link_max_gap_s=2.5 / FPS))
    assert short.links == []  # each gap is 3 frames = 0.43 s > 0.36 s


def _many_pieces(gt, length=5, gap=2):
    """Every ground-truth track cut into pieces of ``length`` frames with ``gap`` frames missing between."""
    frames, ids, boxes = [], [], []
    next_id = 1
    for k in np.unique(gt.ids):
        idx = np.flatnonzero(gt.ids == k)
        phase = (gt.frames[idx] - gt.frames[idx][0]) % (length + gap)
        piece = (gt.frames[idx] - gt.frames[idx][0]) // (length + gap)
        keep = phase < length
        frames.append(gt.frames[idx][keep]), boxes.append(gt.boxes_tlwh[idx][keep])
        ids.append(next_id + piece[keep])
        next_id += int(piece.max()) + 1
    return np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes)


@pytest.mark.data
def test_candidate_pairs_and_the_sparse_assignment_match_the_dense_problem(monkeypatch):
    from ros2_tracker.refine import linking

    frames, ids, boxes = _many_pieces(_gt())
    tr = summarise_tracklets(frames, ids, boxes, fps=FPS, config=MOTION_ONLY)
    assert len(tr.ids) > 80
    rows, cols = linking.candidate_pairs(tr, fps=FPS, config=MOTION_ONLY)
    gap = (tr.first[None, :] - tr.last[:, None]) / FPS
    brute = np.argwhere((gap > 0) & (gap <= MOTION_ONLY.link_max_gap_s))
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == sorted(map(tuple, brute.tolist()))
    dense = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY)
    monkeypatch.setattr(linking, "_DENSE_MAX", 0)
    sparse = refine_tracks(frames, ids, boxes, fps=FPS, config=MOTION_ONLY)
    assert sparse.id_map == dense.id_map and len(dense.links) > 50
    # the pieces of each ground-truth identity end up with one id per identity
    assert len(set(dense.id_map.values())) == len(np.unique(_gt().ids))
