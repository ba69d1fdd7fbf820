"""``calirl evaluate``: any policy against a user on held-out goals, per seed and mean ± std."""

import json

import numpy as np
import pytest

from calirl_lite import train as T
from calirl_lite.cli import main
from calirl_lite.evaluate import EvaluateConfig, evaluate_seeds, load_policy
from calirl_lite.results import EvalResult
from calirl_lite.stages import resolve


def test_scores_per_seed_with_their_mean_and_std(tmp_path, ctx):
    r = evaluate_seeds(EvaluateConfig.make(seeds=(0, 1), n_eval=6), ctx, progress=False)
    assert r.seeds == [0, 1] and set(r.per_seed) == {0, 1} and r.n_eval == 6
    for key in ("accuracy", "assistant_tokens", "turns"):
        values = [r.per_seed[s][key] for s in (0, 1)]
        assert r.mean[key] == pytest.approx(np.mean(values)) and r.std[key] == pytest.approx(np.std(values))
    assert evaluate_seeds(EvaluateConfig.make(seeds=(1,), n_eval=6), ctx, progress=False).per_seed[1] == r.per_seed[1]
    assert EvalResult.load(r.save(tmp_path / "eval.json")) == r  # saved and read back whole


def test_a_trained_run_folder_is_evaluated_with_its_own_weights(tmp_path, capsys, ctx):
    T.train(T.TrainConfig.make(method="oracle", reward="task-efficiency", token_penalty=0.01, out_dir=str(tmp_path / "run")), ctx, progress=False)
    assert load_policy(resolve(ctx, "tiny", "arith-chat").models, str(tmp_path / "run")).name == "run"
    assert main(["evaluate", "--policy", str(tmp_path / "run"), "--seeds", "0", "--n-eval", "4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["policy"] == str(tmp_path / "run") and list(r["per_seed"]) == ["0"] and "accuracy" in r["mean"]


def test_bad_policy_user_or_task_is_named(tmp_path, capsys, ctx):
    with pytest.raises(FileNotFoundError, match="neither 'base' nor a folder with a trained policy"):
        load_policy(resolve(ctx, "tiny", "arith-chat").models, str(tmp_path))
    with pytest.raises(ValueError, match="unknown user 'robot'"):
        EvaluateConfig.make(user="robot")
    assert main(["evaluate", "--task", "chitchat"]) == 2
    assert "has no score to evaluate" in capsys.readouterr().err
