"""`accelerate launch` of `calirl train` on several processes: here 2 CPU processes (gloo), the tiny profile."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None, reason="accelerate's launcher is not installed")
def test_two_processes_train_one_run_together_and_the_first_saves_it_once(tmp_path):
    launcher = str(Path(sys.executable).parent / "accelerate")
    env = {**os.environ, "CALIRL_RUNS": str(tmp_path / "runs"), "CALIRL_SMOKE": "1"}
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "calirl_lite", "world", "build"], env=env, check=True, capture_output=True)  # one process pre-trains it
    done = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                           "-m", "calirl_lite", "train", "--method", "oracle", "--out-dir", str(run)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"process 1 trained its share of {run}" in done.stdout and done.stdout.count("run folder:") == 1  # one report, by the first
    result = json.loads((run / "eval.json").read_text())
    log = json.loads((run / "log.json").read_text())
    assert result["steps"] == 4 and len([e for e in log if "loss" in e]) == 4
    assert (run / "policy" / "model.safetensors").is_file() and not list(run.glob("*.tmp*"))


def test_a_launch_without_a_built_world_says_to_build_it_first(tmp_path, monkeypatch):
    from calirl_lite.env import context
    from calirl_lite.train import TrainConfig, train

    monkeypatch.setenv("CALIRL_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="world must be built first.*calirl world build"):
        train(TrainConfig.make(method="oracle", out_dir=str(tmp_path / "run")), context())
    assert not (tmp_path / "run").exists()


def test_the_paper_profiles_accelerate_config_is_one_accelerate_reads():
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(Path(__file__).parents[1] / "configs" / "accelerate" / "paper-zero2.yaml"))
    assert config.distributed_type == "DEEPSPEED" and config.deepspeed_config["zero_stage"] == 2 and config.mixed_precision == "bf16"
