"""Typed results: a run's eval.json and an evaluation read back whole, and bad files named with what is wrong."""

import json

import pytest

from calirl_lite.io import InputError
from calirl_lite.results import METHOD_LABELS, EvalResult, RunResult, paired_difference


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


def _synthetic_study(rng, calibrations=3, seeds=3, goals=150, truth=0.03):
    """Two methods' per-goal scores with known variance at every level: a goal effect both share (paired), a
    calibration effect and a training-seed effect per run, and noise per (run, goal)."""
    goal = rng.normal(0, 0.3, goals)

    def runs(shift):
        out = {}
        for c in range(calibrations):
            cal = rng.normal(0, 0.04)
            for s in range(seeds):
                out[(c, s)] = shift + goal + cal + rng.normal(0, 0.04) + rng.normal(0, 0.3, goals)
        return out

    return runs(truth), runs(0.0), truth


def test_the_nested_interval_covers_the_truth_and_the_goal_only_one_does_not():
    """Over 400 synthetic studies (3 calibration seeds × 3 training seeds a method, 150 goals) the nested bootstrap's
    95 % interval holds the true difference close to 95 % of the time; the goal-only interval, conditional on the
    runs in hand, far less often."""
    import numpy as np

    from calirl_lite.results import hierarchical_difference

    rng = np.random.default_rng(0)
    nested = goal_only = 0
    studies = 400
    for k in range(studies):
        left, right, truth = _synthetic_study(rng)
        h = hierarchical_difference(left, right, rng_seed=k, draws=1000)
        nested += h["low"] <= truth <= h["high"]
        flat_l = {i: v for i, v in enumerate(left.values())}
        flat_r = {i: v for i, v in enumerate(right.values())}
        g = paired_difference(flat_l, flat_r, rng_seed=k, draws=1000)
        goal_only += g["low"] <= truth <= g["high"]
    print(f"coverage over {studies} studies: nested {nested / studies:.3f}, goal-only {goal_only / studies:.3f}")
    assert 0.90 <= nested / studies <= 0.99, nested / studies
    assert goal_only / studies < 0.8, goal_only / studies


def test_holm_steps_down_and_stops_at_the_first_failure():
    from calirl_lite.results import holm

    assert holm({"a": 0.001, "b": 0.02, "c": 0.04}) == {"a": True, "b": True, "c": True}  # 0.001 ≤ .05/3, 0.02 ≤ .05/2, 0.04 ≤ .05
    assert holm({"a": 0.001, "b": 0.03, "c": 0.04}) == {"a": True, "b": False, "c": False}  # 0.03 > .025 stops it
    assert holm({"a": 0.2}) == {"a": False}


def test_the_nested_interval_needs_runs_on_the_same_goals():
    from calirl_lite.results import hierarchical_difference

    with pytest.raises(ValueError, match="same goals"):
        hierarchical_difference({0: [1.0, 0.0]}, {0: [1.0]})
    h = hierarchical_difference({(0, 0): [1.0] * 10, (0, 1): [1.0] * 10}, {(0, 0): [0.0] * 10}, draws=200)
    assert h["mean"] == pytest.approx(1.0) and h["low"] == pytest.approx(1.0) and h["high"] == pytest.approx(1.0) and h["p"] == 0.0


def test_paired_clusters_take_a_shared_clusters_level_out_of_the_difference():
    """Three worlds whose levels differ a lot (0.2, 0.5, 0.8), the same +0.1 for the left side in each: drawn for
    each side on its own, the worlds' levels swamp the difference; drawn once for both sides, they cancel."""
    import numpy as np

    from calirl_lite.results import hierarchical_difference

    rng = np.random.default_rng(4)
    left, right = {}, {}
    for w, level in enumerate((0.2, 0.5, 0.8)):
        for s in range(3):
            noise = rng.normal(0, 0.01)
            right[(w, s)] = (rng.random(200) < level + noise).astype(float).tolist()
            left[(w, s)] = (rng.random(200) < level + 0.1 + noise).astype(float).tolist()
    alone, paired = hierarchical_difference(left, right, draws=2000), hierarchical_difference(left, right, draws=2000, paired_clusters=True)
    assert alone["mean"] == paired["mean"]
    assert alone["low"] < 0 < paired["low"] and paired["high"] - paired["low"] < (alone["high"] - alone["low"]) / 3
    with pytest.raises(ValueError, match="same clusters"):
        hierarchical_difference({(0, 1): [1.0]}, {(1, 1): [0.0]}, paired_clusters=True)
