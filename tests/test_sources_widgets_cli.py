"""Real-data loaders on local files with the hub schemas, the inspector widget, and the world/bench commands."""

import json
from pathlib import Path

import pytest

from calirl_lite import sources
from calirl_lite.cli import main
from calirl_lite.dialogue import Dialogue, Message
from calirl_lite.inputs import COLLABLLM_TYPES
from calirl_lite.io import InputError
from calirl_lite.widgets import dialogue_html

FIXTURES = Path(__file__).parent / "fixtures"


def test_collabllm_math_fixture_loads_with_the_hub_columns():
    ds = sources.load_collabllm(str(FIXTURES / "collabllm-multiturn-math-hard.jsonl"))
    assert {*COLLABLLM_TYPES, "single_turn_metadata"} <= set(ds.column_names)
    goals = sources.collabllm_goals(ds, "math")
    assert [g["task_id"] for g in goals] == ["0", "1"]  # one goal per conversation
    assert goals[0]["goal"]["answer"] == "2" and goals[1]["goal"]["answer"] == "\\frac{5}{6}"
    contexts = sources.collabllm_contexts(ds, "math")
    assert len(contexts) == 3 and [m.role for m in contexts[1].messages] == ["user", "assistant", "user"]


def test_collabllm_medium_fixture_keeps_the_hidden_request_for_the_user():
    ds = sources.load_collabllm(str(FIXTURES / "collabllm-multiturn-medium.jsonl"))
    goal = sources.collabllm_goals(ds, "medium")[0]["goal"]
    assert "under 500 words" in goal["problem"] and goal["reference"].startswith("Title:")


def test_collabllm_short_names_map_to_hub_ids():
    assert sources.collabllm_source("math-hard") == "collabllm/collabllm-multiturn-math-hard"
    assert sources.collabllm_source("medium-large") == "collabllm/collabllm-multiturn-medium-large"


def test_collabllm_file_with_a_missing_column_is_named(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "collabllm-multiturn-math-hard.jsonl").read_text().splitlines()]
    for r in rows:
        del r["single_turn_prompt"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"bad.jsonl:1: missing column\(s\) \['single_turn_prompt'\]"):
        sources.load_collabllm(str(bad))
    with pytest.raises(InputError, match="nothing.jsonl: no such file"):
        sources.load_collabllm(str(tmp_path / "nothing.jsonl"))


def test_collabllm_bad_prompt_row_is_named(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "collabllm-multiturn-math-hard.jsonl").read_text().splitlines()]
    rows[1]["prompt"] = [{"role": "robot", "content": "x"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"bad.jsonl:2: prompt\[0\] must be"):
        sources.load_collabllm(str(bad))


def test_boxed_answer():
    assert sources.boxed_answer("so \\boxed{\\frac{1}{\\sqrt{2}}} done") == "\\frac{1}{\\sqrt{2}}"
    assert sources.boxed_answer("no box") is None


def test_gsm_problems_from_reasoning_gym_offline():
    goals = sources.gsm_goals(5, seed=3)
    assert len(goals) == 5 and all(g["goal"]["problem"] and g["goal"]["answer"].lstrip("-").isdigit() for g in goals)
    assert goals == sources.gsm_goals(5, seed=3)


# ----------------------------------------------------------------------------- inspector


def test_dialogue_html_tells_user_and_assistant_apart_and_escapes():
    d = Dialogue("arith-chat", "1", {"answer": 3}, [Message("user", "a <b>"), Message("assistant", "the answer is 3 .")], user="real", policy="base", scores={"accuracy": 1.0})
    html = dialogue_html(d)
    assert html.count("calirl-user") == 1 and html.count("calirl-assistant") == 1
    assert "&lt;b&gt;" in html and "hidden goal" in html and "accuracy 1" in html
    assert "calirl-assistant" not in dialogue_html(d, upto=1)


def test_inspector_steps_through_turns_and_reloads_on_a_new_choice(world):
    from calirl_lite.rollout import Policy
    from calirl_lite.users import LMUser, ScriptedUsers
    from calirl_lite.widgets import DialogueInspector

    model, tok = world.load_model()
    goals = {t: [g["goal"] for g in world.tasks(t, "test")[:3]] for t in ("arith-chat", "docedit-chat")}
    insp = DialogueInspector({"base": Policy(model, tok)}, {"real": ScriptedUsers(), "naive": LMUser(model, tok)}, goals, max_messages=6)
    assert insp.step == 1 and insp.view.value.count("calirl-user") == 1
    insp.next_button.click()
    assert insp.step == 2 and "calirl-assistant" in insp.view.value
    insp.prev_button.click()
    insp.prev_button.click()
    assert insp.step == 1
    insp.all_button.click()
    assert insp.step == len(insp.dialogue.messages)
    insp.task.value = "docedit-chat"
    assert insp.dialogue.task == "docedit-chat" and insp.step == 1
    insp.user.value = "naive"
    assert insp.dialogue.user == "naive"


def test_side_by_side_inspector_shares_task_user_and_seed_and_steps_both(world):
    from calirl_lite.rollout import Policy
    from calirl_lite.users import ScriptedUsers
    from calirl_lite.widgets import SideBySideInspector

    model, tok = world.load_model()
    goals = {t: [g["goal"] for g in world.tasks(t, "test")[:3]] for t in ("arith-chat", "docedit-chat")}
    policies = {"a": Policy(model, tok, temperature=1.0), "b": Policy(model, tok, temperature=0.5)}
    sbs = SideBySideInspector(policies, {"real": ScriptedUsers(), "real too": ScriptedUsers()}, goals, left="a", right="b", max_messages=6)
    assert (sbs.left.dialogue.policy, sbs.right.dialogue.policy) == ("a", "b")
    assert sbs.left.dialogue.messages[0] == sbs.right.dialogue.messages[0]  # the same goal, user and seed: the same opening
    sbs.next_button.click()
    assert sbs.left.step == sbs.right.step == 2
    sbs.left.task.value = "docedit-chat"  # one control moves both sides
    assert sbs.right.task.value == "docedit-chat" and sbs.right.dialogue.task == "docedit-chat" and sbs.right.step == 1
    sbs.left.seed.value = 2
    assert sbs.right.dialogue.goal == goals["docedit-chat"][2]
    sbs.all_button.click()
    assert sbs.left.step == len(sbs.left.dialogue.messages) and sbs.right.step == len(sbs.right.dialogue.messages)
    with pytest.raises(ValueError, match="right='c' is not one of the policies: a, b"):
        SideBySideInspector(policies, {"real": ScriptedUsers()}, goals, right="c")


# ----------------------------------------------------------------------------- commands


def test_world_build_command_reuses_the_cache(tmp_path, capsys):
    args = ["world", "build", "--cache-dir", str(tmp_path), "--train-steps", "3", "--corpus-dialogues", "20", "--n-train-tasks", "10", "--n-test-tasks", "4"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "build took" in first and str(tmp_path) in first
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())  # beside it: the build's lock file
    stamp = (folder / "world.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (folder / "world.json").stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_world_build_rejects_bad_settings(capsys):
    assert main(["world", "build", "--corpus-user-mix", '{"angry": 1}']) == 2
    assert "corpus_user_mix" in capsys.readouterr().err


def test_bench_rollout_json(capsys):
    assert main(["bench", "rollout", "--json", "--dialogues", "3", "--naive-dialogues", "1", "--max-messages", "4", "--max-new-tokens", "6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"engine_tok_s", "generate_tok_s", "naive_tok_s"} <= set(out)


def test_bench_world_times_a_fresh_build_and_reports_copy_rates(capsys):
    assert main(["bench", "world", "--json", "--goals", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["build_seconds"] > 0 and out["n_goals"] == 4
    for key in ("arith_answers", "arith_right", "docedit_drafts", "name", "tone", "place", "day"):
        assert 0.0 <= out[key] <= 1.0


def test_bench_rejects_unknown_profile(capsys):
    assert main(["bench", "rollout", "--profile", "laptop"]) == 2
    assert "unknown profile 'laptop'" in capsys.readouterr().err
