"""Checkpoint files: a path with ~ is the user's home, as everywhere else (no literal ./~ folder)."""

import pytest

pytest.importorskip("torch")


def test_checkpoint_paths_expand_the_home_folder(tmp_path, monkeypatch):
    from ros2_tracker.backends.torch_checkpoint import read_checkpoint, write_checkpoint
    from ros2_tracker.regression.backends.torchvision_frcnn import FrcnnRegressorConfig, onnx_paths

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    written = write_checkpoint("~/models/c.pt", {"a": 1})
    assert written == tmp_path / "home" / "models" / "c.pt" and not (tmp_path / "~").exists()
    assert read_checkpoint("~/models/c.pt", ValueError) == {"a": 1}
    backbone, heads = onnx_paths(FrcnnRegressorConfig(checkpoint_path="~/models/c.pt",
                                                      roi_heads_onnx="~/other/heads.onnx"))
    home = tmp_path / "home"
    assert backbone.parent == home / "models" and heads == home / "other" / "heads.onnx"
