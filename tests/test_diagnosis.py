"""The diagnosis of what calibration leaves: its settings, and the rule that reads its rows."""

from __future__ import annotations

import pytest
from test_reproduce import fake_result

from calirl_lite.diagnosis import DiagnosisConfig, diagnosis_markdown, summarise_rows
from calirl_lite.stages import TrainConfig


def test_correcting_a_simulator_is_for_the_calibrated_method_and_its_contexts():
    assert TrainConfig(method="calibrated", corrected="right answer, wrong answer").corrected_contexts() == ("right answer", "wrong answer")
    assert TrainConfig(method="calibrated", corrected="question").simulator() == "calibrated, corrected at: question"
    with pytest.raises(ValueError, match="method 'calibrated'"):
        TrainConfig(method="oracle", corrected="question")
    with pytest.raises(ValueError, match="'answers' is no context"):
        TrainConfig(method="calibrated", corrected="answers")
    with pytest.raises(ValueError, match="task must be one of"):
        DiagnosisConfig(task="math-chat")


def test_the_rule_calls_a_correction_that_beats_calibrated_in_every_seed_one_that_matters():
    scores = {"Calibrated": 0.5, "Static Context": 0.45, "scripted at the calibrated rates": 0.5, "corrected at answers": 0.8,
              "corrected where the gap is (question)": 0.55}
    seeds = (0, 1, 2)
    shift = {0: 0.1, 1: 0.0, 2: -0.1}  # the gap-corrected row: above Calibrated in seed 0, below it in seed 2

    def score(row, s):
        return scores[row] + (shift[s] if "question" in row else 0.0)

    results = {row: [fake_result("calibrated", "arith-chat", s, score(row, s), goals=100) for s in seeds] for row in scores}
    rows = summarise_rows({row: {} for row in scores}, results)
    assert rows["corrected at answers"]["verdict"].startswith("matters")
    assert rows["corrected at answers"]["vs Calibrated"]["low"] > 0.2
    assert rows["scripted at the calibrated rates"]["verdict"] == "within noise of Calibrated"
    assert not rows["corrected where the gap is (question)"]["vs Calibrated"]["agree"]  # seed 2 is below Calibrated
    assert rows["corrected where the gap is (question)"]["verdict"] == "not shown"
    md = diagnosis_markdown({"settings": {"task": "arith-chat", "calibration_seed": 0, "seeds": list(seeds)}, "validation_gap": 0.4,
                             "by_context": {"wrong answer": 0.3, "question": 0.1}, "fitted": "p_accept_wrong=0.3", "rows": rows})
    assert "| corrected at answers | 0.800, 0.800, 0.800 | 0.800 |" in md and "seeds disagree" in md
