"""ReidTrainConfig: the shipped YAML documents the defaults; bad values are refused; no torch at start-up."""

import subprocess
import sys
from pathlib import Path

import pytest

from ros2_tracker.core.config import ConfigError
from ros2_tracker.io.params import load_config
from ros2_tracker.training.config import ReidTrainConfig

REPO = Path(__file__).resolve().parents[2]


def test_shipped_yaml_equals_the_defaults():
    assert load_config(ReidTrainConfig, REPO / "config" / "reid_train.yaml") == ReidTrainConfig()
    for spec in ReidTrainConfig.specs():
        assert spec.description, spec.name


@pytest.mark.parametrize("field,value", [
    ("loss", "arcface"), ("epochs", 0), ("p_identities", 1), ("k_crops", 1), ("freeze_blocks", 20),
    ("eval_identity_fraction", 0.95), ("device", "tpu"), ("lr", -1.0), ("train_sequences", []),
])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        ReidTrainConfig(**{field: value})


def test_distance_weighted_cutoffs_must_be_ordered():
    with pytest.raises(ConfigError, match="dws_nonzero_cutoff"):
        ReidTrainConfig(dws_cutoff=1.0, dws_nonzero_cutoff=0.8)


def test_cli_start_up_and_the_data_modules_do_not_import_torch():
    code = ("import sys\n"
            "from ros2_tracker.cli.main import build_parser\n"
            "build_parser()\n"
            "import ros2_tracker.training.reid_data, ros2_tracker.training.reid_eval\n"
            "import ros2_tracker.training.config\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
