"""The toy tasks, their scripted people, Dialogue files and the behaviour statistics."""

import json

import numpy as np
import pytest

from calirl_lite import dialogue as dlg
from calirl_lite import stats
from calirl_lite.dialogue import TERMINATE, Dialogue, Message
from calirl_lite.tasks import CORPUS_ASSISTANTS, CORPUS_USERS, REAL_USER, TASKS, ScriptedAssistant, ScriptedUser, get_task
from calirl_lite.world import scripted_dialogue


def dialogues(task_name, user_persona, assistant="careful", n=200, seed=0):
    task, rng = get_task(task_name), np.random.default_rng(seed)
    out = []
    for i in range(n):
        goal = task.sample_goal(rng)
        out.append(scripted_dialogue(task, goal, ScriptedUser(task, goal, user_persona, rng), ScriptedAssistant(task, CORPUS_ASSISTANTS[assistant], rng), 14, str(i)))
    return out


@pytest.mark.parametrize("name", list(TASKS))
def test_what_a_user_reveals_is_read_back(name):
    task, rng = get_task(name), np.random.default_rng(1)
    for _ in range(50):
        goal = task.sample_goal(rng)
        for slot in task.slots:
            assert task.parse_user(task.reveal(goal, slot, goal[slot])) == {slot: goal[slot]}
            assert task.parse_assistant(task.ask(slot, goal)).slots == (slot,)
        assert task.parse_user(task.first_message(goal, {})) == {}  # the vague first message gives nothing away
        assert task.parse_user(task.first_message(goal, goal)) == {s: goal[s] for s in task.slots}


def test_real_users_withhold_and_careful_assistants_succeed():
    ds = dialogues("arith-chat", REAL_USER)
    assert all(get_task("arith-chat").parse_user(d.messages[0].text) == {} for d in ds)
    assert np.mean([d.scores["accuracy"] for d in ds]) > 0.85
    assert all(d.messages[-1].text.endswith(TERMINATE) for d in ds if d.terminated)
    hasty = dialogues("arith-chat", REAL_USER, "hasty")
    assert np.mean([d.scores["accuracy"] for d in hasty]) < 0.4  # guessing fails against users who withhold


def test_docedit_bleu_is_one_for_the_target_and_less_for_a_wrong_slot():
    task = get_task("docedit-chat")
    goal = task.sample_goal(np.random.default_rng(0))
    d = Dialogue(task.name, "0", goal, [Message("user", "hi"), Message("assistant", f"here is the note : {goal['target']}")])
    assert task.score(d)["bleu"] == pytest.approx(1.0)
    wrong = task.document({**goal, "day": "monday" if goal["day"] != "monday" else "friday"})
    d.messages[-1] = Message("assistant", f"here is the note : {wrong}")
    assert 0 < task.score(d)["bleu"] < 1
    d.messages = d.messages[:1]
    assert task.score(d)["bleu"] == 0.0


def test_behaviour_statistics_follow_the_personas():
    real = stats.behaviour_stats(dialogues("arith-chat", REAL_USER, "sloppy", n=400))
    forth = stats.behaviour_stats(dialogues("arith-chat", CORPUS_USERS["forthcoming"], "sloppy", n=400))
    assert real["unprompted_reveal_rate"] < 0.2 < 0.8 < forth["unprompted_reveal_rate"]
    assert real["accept_wrong_rate"] < 0.15 and forth["accept_wrong_rate"] > 0.5
    same = dialogues("docedit-chat", REAL_USER, n=50)
    assert all(v == 0 for v in stats.behaviour_tv(same, same).values())
    tv = stats.behaviour_tv(dialogues("arith-chat", CORPUS_USERS["forthcoming"], "sloppy"), dialogues("arith-chat", REAL_USER, "sloppy"))
    assert tv["unprompted_reveal_rate"] > 0.5 and 0 < tv["messages"] <= 1


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'chess'.*arith-chat"):
        get_task("chess")


# ----------------------------------------------------------------------------- Dialogue files


def test_jsonl_and_dataset_round_trip(tmp_path):
    ds = dialogues("docedit-chat", REAL_USER, n=5)
    path = dlg.write_jsonl(tmp_path / "d.jsonl", ds)
    assert dlg.read_jsonl(path) == ds
    assert dlg.from_dataset(dlg.to_dataset(ds)) == ds


@pytest.mark.parametrize(
    "row, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"task": "arith-chat", "task_id": "1", "messages": []}), "missing field 'goal'"),
        (json.dumps({"task": "arith-chat", "task_id": "1", "goal": {}, "messages": []}), "goal"),
        (json.dumps({"task": "arith-chat", "task_id": "1", "goal": {"a": 1}, "messages": [{"role": "system", "text": "x"}]}), r"messages\[0\]"),
        (json.dumps({"task": "arith-chat", "task_id": "1", "goal": {"a": 1}, "messages": [], "colour": 1}), "colour"),
    ],
)
def test_a_bad_row_is_reported_with_file_and_line(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(dialogues("arith-chat", REAL_USER, n=1)[0].to_dict())
    path.write_text(good + "\n" + row + "\n")
    with pytest.raises(ValueError, match=rf"bad.jsonl:2: .*{message}"):
        dlg.read_jsonl(path)


def test_missing_dialogue_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        dlg.read_jsonl(tmp_path / "nope.jsonl")


def test_graded_simulators_move_per_turn_behaviour_from_the_real_users_to_the_forthcoming_one():
    from dataclasses import replace

    from calirl_lite.tasks import graded_persona

    assert replace(graded_persona(0.0), name="real") == REAL_USER
    far, half = graded_persona(1.0), graded_persona(0.5)
    forth = CORPUS_USERS["forthcoming"]
    assert (far.p_accept_wrong, far.p_unprompted_reveal, far.p_point_out) == (forth.p_accept_wrong, forth.p_unprompted_reveal, forth.p_point_out)
    assert far.reveal_first == half.reveal_first == REAL_USER.reveal_first  # they open as the real users do
    assert half.p_accept_wrong == pytest.approx((REAL_USER.p_accept_wrong + forth.p_accept_wrong) / 2)
    with pytest.raises(ValueError, match="w must be in"):
        graded_persona(1.5)
