"""Identity crops from MOTChallenge folders, the sequence + identity split, and the P x K sampler."""

from collections import Counter

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.io.mot import MotFormatError
from ros2_tracker.training.reid_data import PKBatchSampler, ReidCrops, load_sequence_crops, split_identities


def _crops(seq: str, tracks: dict[int, int], size=(16, 8)) -> ReidCrops:
    """Synthetic crops: ``tracks`` maps track id -> number of crops (frames 1..n)."""
    ids, frames = [], []
    for tid, n in tracks.items():
        ids += [f"{seq}:{tid}"] * n
        frames += list(range(1, n + 1))
    images = np.zeros((len(ids), *size, 3), np.uint8)
    return ReidCrops(images, np.array(ids), np.array([seq] * len(ids)), np.array(frames, np.int64),
                     {seq: 10.0})


def test_split_holds_out_sequences_and_a_fraction_of_identities():
    train_a = _crops("A", {i: 4 for i in range(10)})
    train_b = _crops("B", {i: 3 for i in range(5)} | {99: 1})
    held = _crops("C", {1: 5, 2: 5})
    split = split_identities([train_a, train_b], [held], eval_identity_fraction=0.2, seed=3)
    train_ids, eval_ids = set(split.train.identity_names), set(split.eval.identity_names)
    assert not train_ids & eval_ids
    assert {"C:1", "C:2"} <= eval_ids  # whole held-out sequence
    assert len([i for i in eval_ids if i.startswith("A:")]) == 2  # 20 % of 10
    assert len([i for i in eval_ids if i.startswith("B:")]) == 1  # round(0.2 * 6)
    assert "B:99" not in train_ids  # a single crop gives no positive pair
    assert len(split.train) + len(split.eval) <= len(train_a) + len(train_b) + len(held)
    again = split_identities([train_a, train_b], [held], eval_identity_fraction=0.2, seed=3)
    assert set(again.eval.identity_names) == eval_ids  # seeded


def test_split_rejects_an_identity_on_both_sides():
    from ros2_tracker.training.reid_data import ReidSplit

    a = _crops("A", {1: 3})
    with pytest.raises(ValueError, match="A:1"):
        ReidSplit(a, a)


def test_pk_sampler_yields_p_identities_times_k_crops_from_training_only():
    train = _crops("A", {i: 2 + i % 5 for i in range(12)})
    held = _crops("C", {i: 6 for i in range(4)})
    split = split_identities([train], [held], eval_identity_fraction=0.25, seed=0)
    labels, _ = split.train.labels()
    sampler = PKBatchSampler(labels, p=4, k=3, batches_per_epoch=20, seed=1)
    assert len(sampler) == 20
    eval_ids = set(split.eval.identity_names)
    batches = list(sampler)
    assert len(batches) == 20
    for batch in batches:
        assert len(batch) == 12
        per_id = Counter(labels[batch].tolist())
        assert len(per_id) == 4 and set(per_id.values()) == {3}
        assert not {split.train.identities[i] for i in batch} & eval_ids  # nothing leaks across the split
    # an identity with >= K crops gives K distinct crops
    for batch in batches:
        for lab in set(labels[batch].tolist()):
            idx = [i for i in batch if labels[i] == lab]
            if (labels == lab).sum() >= 3:
                assert len(set(idx)) == 3


def test_pk_sampler_is_reproducible_per_epoch_and_differs_between_epochs():
    labels = np.repeat(np.arange(10), 4)
    s = PKBatchSampler(labels, p=5, k=2, seed=7)
    assert len(s) == 4  # ceil(40 / 10)
    first = list(s)
    assert list(s) == first
    s.set_epoch(1)
    assert list(s) != first


def test_pk_sampler_rejects_too_few_identities():
    with pytest.raises(ValueError, match="only 2"):
        PKBatchSampler(np.array([0, 0, 1, 1]), p=3, k=2)


def test_missing_sequence_is_a_clear_error(tmp_path):
    with pytest.raises(MotFormatError, match="not found"):
        load_sequence_crops(tmp_path / "nope", (32, 16))


@pytest.mark.data
def test_crops_from_tud_campus_are_identity_crops_at_the_network_size():
    root = require_shared("data", "TUD-Campus")
    crops = load_sequence_crops(root, (64, 32), min_box_height=32, max_crops_per_identity=5)
    assert crops.images.shape[1:] == (64, 32, 3) and crops.images.dtype == np.uint8
    counts = Counter(crops.identities.tolist())
    assert len(counts) == 8 and max(counts.values()) <= 5
    assert all(name.startswith("TUD-Campus:") for name in counts)
    assert crops.fps["TUD-Campus"] == 25.0
    assert crops.images.std() > 10  # real pixels, not padding


@pytest.mark.data
def test_mot17_crops_keep_only_pedestrians_with_images():
    root = require_shared("data", "MOT17-mini", "train", "MOT17-09-FRCNN")
    crops = load_sequence_crops(root, (64, 32), min_visibility=0.3)
    assert len(crops) > 0
    # MOT17-mini has images for its first frames only; gt covers the whole sequence
    assert crops.frames.max() <= len(list((root / "img1").glob("*.jpg")))
    from ros2_tracker.io.mot import read_mot

    gt = read_mot(root / "gt" / "gt.txt", note_unsorted=False)
    ped = {int(i) for i in gt.ids[(gt.scores == 1) & (gt.extra[:, 0] == 1)]}
    assert {int(i.split(":")[1]) for i in crops.identity_names} <= ped
