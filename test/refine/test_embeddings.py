"""EmbeddingRecorder: the embeddings online tracking computed, handed to each result row (real OSNet)."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.io.mot import read_mot
from ros2_tracker.refine.embeddings import EmbeddingRecorder


@pytest.mark.data
def test_rows_take_the_embedding_of_their_detection():
    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.offline import SequenceAppearance

    root = require_shared("data", "TUD-Campus")
    model = require_shared("models", "osnet_x0_25_msmt17.onnx")
    embedder = create_embedder(EmbedderConfig(model_path=str(model)))
    source = SequenceAppearance(open_frame_source(root), embedder)
    recorder = EmbeddingRecorder(source)
    assert recorder.row_embeddings(np.array([1]), np.array([[0.0, 0, 10, 10]])) is None  # nothing yet
    dets = read_mot(root / "det" / "det_frcnn.txt")
    returned = {}
    for frame, idx in dets.by_frame(1, 3):
        returned[frame] = recorder(frame, tlwh_to_xyxy(dets.boxes_tlwh[idx]))
    # result rows: frame 2's detections nudged by 2 px (a tracker's filtered boxes), one box where no
    # detection is, and a row of frame 5 (never embedded)
    idx2 = np.flatnonzero(dets.frames == 2)
    boxes = np.concatenate([dets.boxes_tlwh[idx2] + [2, -2, 0, 0], [[600.0, 5, 20, 40]], dets.boxes_tlwh[:1]])
    frames = np.concatenate([np.full(len(idx2), 2), [2, 5]])
    out = recorder.row_embeddings(frames, boxes)
    assert out.shape == (len(frames), 512)
    np.testing.assert_array_equal(out[: len(idx2)], returned[2])
    assert not out[len(idx2):].any()
    # distinct people get distinct, unit-norm embeddings
    norms = np.linalg.norm(out[: len(idx2)], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert (out[0] @ out[1]) < 0.99
