"""Typed results: a run's eval.json and an evaluation read back whole, and bad files named with what is wrong."""

import json

import pytest

from calirl_lite.io import InputError
from calirl_lite.results import METHOD_LABELS, EvalResult, RunResult


def a_run(folder):
    return RunResult("naive", "tiny", "arith-chat", 1, "accuracy", "naive", 30, {"real": {"accuracy": 0.5}, "simulator": {"accuracy": 0.6}},
                     {"real": {"accuracy": 0.4}, "simulator": {"accuracy": 0.9}}, str(folder), train_seconds=12.5, policy_tokens=100)


def test_a_run_result_is_saved_into_its_folder_and_loaded_back_equal(tmp_path):
    r = a_run(tmp_path)
    assert r.save() == tmp_path / "eval.json"
    assert RunResult.load(tmp_path) == r and RunResult.load(tmp_path / "eval.json") == r
    assert r.score() == 0.4 and r.score("simulator") == 0.9 and r.score("real", "base") == 0.5
    assert r.label == METHOD_LABELS["naive"] == "Naive Interactive RL"


def test_an_evaluation_keeps_its_integer_seeds_through_json(tmp_path):
    e = EvalResult.of("tiny", "arith-chat", "base", "real", 6, {0: {"accuracy": 0.5}, 3: {"accuracy": 0.7}})
    assert e.mean["accuracy"] == pytest.approx(0.6) and e.std["accuracy"] == pytest.approx(0.1) and e.seeds == [0, 3]
    assert EvalResult.load(e.save(tmp_path / "e.json")) == e
    assert "0.600 ± 0.100" in e.text()


def test_a_missing_or_wrong_result_file_is_named_with_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="eval.json: no such file"):
        RunResult.load(tmp_path)
    data = a_run(tmp_path).to_dict()
    del data["trained"]
    (tmp_path / "eval.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"eval.json: no field 'trained'"):
        RunResult.load(tmp_path)
    (tmp_path / "eval.json").write_text("{\n  \"method\": ")
    with pytest.raises(InputError, match=r"eval.json:2: not JSON"):
        RunResult.load(tmp_path)
