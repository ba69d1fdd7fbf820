"""The mismatch lab's pieces: simulators with chosen errors, the user's verdict as a reward, the real-reward curve."""

import json
import re
from pathlib import Path

import pytest
import torch

from calirl_lite import stages as S
from calirl_lite import train as T
from calirl_lite.dialogue import TERMINATE, Dialogue, Message
from calirl_lite.task_family import REAL_USER
from calirl_lite.tasks import get_task
from calirl_lite.users import persona_from_spec, verdict


def _ending(*user_turns):
    messages = []
    for text in user_turns:
        messages += [Message("user", text), Message("assistant", "the answer is 3 .")]
    return Dialogue("arith-chat", "d", {}, messages[:-1])


def test_the_verdict_is_the_user_ending_the_chat_content():
    task = get_task("arith-chat")
    assert verdict(task, _ending("hi", f"great , thanks ! {TERMINATE}")) == 1.0
    assert verdict(task, _ending("hi", f"no , that is not right . never mind , bye . {TERMINATE}")) == 0.0  # gave up
    assert verdict(task, _ending("hi", f"never mind , bye . {TERMINATE}")) == 0.0  # left at a question
    assert verdict(task, _ending("hi", "no , that is not right .")) == 0.0  # still talking: the budget ran out
    budget_out = _ending("hi")
    budget_out.messages.append(Message("assistant", "the answer is 3 ."))
    assert verdict(task, budget_out) == 0.0


def test_a_user_spec_sets_single_errors_and_behaviours_and_names_what_is_wrong():
    assert persona_from_spec("") == REAL_USER
    p = persona_from_spec("sycophantic, p_unprompted_reveal=0.5, impatient")
    assert (p.p_accept_wrong, p.p_unprompted_reveal, p.patience, p.p_quit_on_question) == (1.0, 0.5, 1, REAL_USER.p_quit_on_question)
    assert persona_from_spec("over-forthcoming:0.5").p_unprompted_reveal == pytest.approx(0.5 * REAL_USER.p_unprompted_reveal + 0.5)
    assert persona_from_spec("patience=2").patience == 2 and persona_from_spec("patience=2").name == "patience=2"
    for spec, words in (("sycophantc", "unknown simulator error 'sycophantc'"), ("p_accept_wrong=1.5", "p_accept_wrong must be a chance in [0, 1]"),
                        ("patience=two", "patience must be a whole number"), ("mood=1", "'mood' is no behaviour"),
                        ("sycophantic:lots", "strength of sycophantic must be a number"), ("patience=0", "patience must be ≥ 1")):
        with pytest.raises(ValueError, match=re.escape(words)):
            persona_from_spec(spec)


def test_the_reward_source_and_the_training_user_are_checked_settings(ctx):
    for bad, words in (({"reward": "vibes"}, "unknown reward 'vibes'"), ({"reward": "task-efficiency"}, "needs token_penalty > 0"),
                       ({"token_penalty": 0.01}, "token_penalty is that reward's alone"),
                       ({"method": "naive", "user": "sycophantic"}, "goes with method 'oracle' or 'calibrated'"), ({"method": "oracle", "user": "rude"}, "unknown simulator error")):
        with pytest.raises(ValueError, match=words):
            T.TrainConfig.make(**bad)
    with pytest.raises(ValueError, match="scripted users with errors exist in the toy world only"):
        S.CalibrationConfig.make(task="chitchat", persona="sycophantic")
    lm = T.TrainConfig.make(method="calibrated", user="sycophantic")
    assert lm.simulator() == "lm sycophantic" and S.calibration_of(lm, ctx).cfg.persona == "sycophantic"
    assert S.calibration_of(T.TrainConfig.make(), ctx).cfg.persona == ""
    cfg = T.TrainConfig.make(method="oracle", user="sycophantic", reward="verdict")
    assert cfg.simulator() == "sycophantic" and T.TrainConfig.make(method="naive").simulator() == "naive"
    assert S.train_stage(cfg, ctx).folder != S.train_stage(T.TrainConfig.make(method="oracle", reward="verdict"), ctx).folder  # its own run


def test_a_run_against_a_scripted_simulator_on_its_verdict_logs_the_real_reward_curve_without_changing_training(tmp_path, ctx):
    from safetensors.torch import load_file

    def run(name, every):
        cfg = T.TrainConfig.make(method="oracle", user="sycophantic", reward="verdict", steps=4, real_every=every, out_dir=str(tmp_path / name))
        return T.train(cfg, ctx, progress=False)

    tracked, plain = run("tracked", 2), run("plain", 0)
    assert tracked.simulator == "sycophantic" and set(tracked.trained) == {"simulator", "real"}
    assert tracked.trained["simulator"]["verdict"] >= tracked.trained["real"]["verdict"]  # it accepts everything the real users do
    log = json.loads((tmp_path / "tracked" / "log.json").read_text())
    assert [h["step"] for h in log if "real_verdict" in h] == [0, 2, 4]
    assert all(0 <= h["real_accuracy"] <= 1 for h in log if "real_verdict" in h)
    assert any("rewards/verdict/mean" in h for h in log)  # TRL's name of the reward it trained on
    a, b = load_file(tmp_path / "tracked" / "policy" / "model.safetensors"), load_file(tmp_path / "plain" / "policy" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # scoring with the real users took nothing from training's random state
    assert tracked.trained == plain.trained


@pytest.mark.slow
def test_the_lab_trains_against_each_simulator_and_writes_its_table_and_figures(tmp_path, ctx):
    from calirl_lite.cli import main
    from calirl_lite.lab import LabConfig, find_row, lab_markdown, simulators_markdown

    # smoke grid: arith-chat, sycophantic (scripted, and the LM calibrated on its traces), task and verdict, seed 0
    assert main(["lab", "--workers", "1", "--lm", "--out", str(tmp_path / "lab")]) == 0
    result = json.loads((tmp_path / "lab" / "lab.json").read_text())
    rows = result["tasks"]["arith-chat"]["rows"]
    assert [(r["reward"], r["simulator"]) for r in rows] == [(reward, who) for reward in ("task", "verdict") for who in ("real", "sycophantic", "lm sycophantic")]
    assert [r["error"] for r in rows[:3]] == ["none (the real users)", "sycophantic", "sycophantic (LM)"]
    gaps = result["tasks"]["arith-chat"]["gaps"]
    # (the smoke world's LM answers too seldom to meet the error)
    assert set(gaps) == {"real", "sycophantic", "lm sycophantic"} and gaps["real"]["proxy_gap"] == 0 and gaps["real"]["exact"]["total"] == 0
    made = json.loads((S.calibration_for(ctx, "tiny", "arith-chat", persona="sycophantic").folder / "config.json").read_text())
    assert made["persona"] == "sycophantic"  # the LM simulator learned the sycophantic users' traces
    for r in rows:
        assert set(r["real"]) == {"0"} and 0 <= r["real"]["0"] <= 1 and (r["vs_oracle"] is None) == (r["simulator"] == "real")
        assert [p[0] for p in r["curves"]["0"]["real"]] == [0, 2, 4] and len(r["curves"]["0"]["train"]) == 4
        assert r["simulator_says"]["0"] >= r["real_says"]["0"] if r["simulator"] == "sycophantic" else True
    assert json.loads((Path(rows[2]["runs"]["0"]) / "config.json").read_text())["method"] == "calibrated"
    for name in ("lab.md", "lab.png", "lab_curves.png"):
        assert (tmp_path / "lab" / name).is_file()
    assert "| verdict | sycophantic |" in lab_markdown(result)
    assert "| sycophantic | accepts wrong answers and ends the dialogue satisfied | p_accept_wrong 0.05 → 1 |" in simulators_markdown(result)
    assert find_row(result, "arith-chat", "verdict", "real")["runs"]["0"].endswith(tuple("0123456789abcdef"))
    with pytest.raises(ValueError, match="no run of arith-chat with reward 'task' against 'impatient'"):
        find_row(result, "arith-chat", "task", "impatient")
    with pytest.raises(ValueError, match="errors must name at least one of"):
        LabConfig.make(errors=("grumpy",))


def test_the_simulator_designer_trains_against_its_sliders_simulator(tmp_path, ctx):
    import dataclasses

    from calirl_lite.lab import SimulatorDesigner

    designer = SimulatorDesigner(dataclasses.replace(ctx, runs=tmp_path / "runs"), task="arith-chat")
    assert designer.spec() == ""  # the sliders start at the real users
    designer.sliders["p_accept_wrong"].value = 1.0
    designer.sliders["patience"].value = 2
    designer.reward.value = "task"
    first = designer.train()
    assert first["spec"] == "p_accept_wrong=1,patience=2" and first["reward"] == "task"
    assert [p[0] for p in first["real"]] == [0, 2, 4] and len(first["train"]) == 4 and 0 <= first["real_score"] <= 1
    assert "#1 p_accept_wrong=1,patience=2 (reward from task)" in designer.status.value
    designer.sliders["patience"].value = 3
    second = designer.train()
    assert second["spec"] == "p_accept_wrong=1" and len(designer.designs) == 2 and "#2 p_accept_wrong=1" in designer.status.value
