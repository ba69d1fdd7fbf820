"""The toy tasks, their scripted people, Dialogue files and the behaviour statistics."""

import json

import numpy as np
import pytest

from calirl_lite import dialogue as dlg
from calirl_lite import stats
from calirl_lite.dialogue import TERMINATE, Dialogue, Message
from calirl_lite.io import InputError
from calirl_lite.task_family import REAL_USER, ScriptedAssistant, ScriptedUser
from calirl_lite.tasks import get_task
from calirl_lite.toy_tasks import CORPUS_ASSISTANTS, CORPUS_USERS, TASKS
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
    assert np.mean([d.scores["accuracy"] for d in hasty]) < 0.5  # guessing fails against users who withhold (0.43; careful: > 0.85)


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
    assert real["unprompted_reveal_rate"] < 0.2 < 0.6 < forth["unprompted_reveal_rate"]
    assert real["accept_wrong_rate"] < 0.08 < forth["accept_wrong_rate"] < 0.2  # 0.05 and 0.1: both seldom
    assert real["point_out_rate"] < 0.4 and forth["point_out_rate"] == 1.0
    assert real["quit_on_question_rate"] == 0.0 and forth["quit_on_question_rate"] > 0.7
    same = dialogues("docedit-chat", REAL_USER, n=50)
    assert all(v == 0 for v in stats.behaviour_tv(same, same).values())
    tv = stats.behaviour_tv(dialogues("arith-chat", CORPUS_USERS["forthcoming"], "sloppy"), dialogues("arith-chat", REAL_USER, "sloppy"))
    assert tv["unprompted_reveal_rate"] > 0.5 and 0 < tv["messages"] <= 1


def test_forthcoming_users_leave_at_a_question_and_name_every_wrong_detail_real_ones_do_neither():
    from calirl_lite.task_family import GIVE_UP, REJECT

    task = get_task("docedit-chat")
    goal = task.sample_goal(np.random.default_rng(0))
    wrong = {s: task.wrong_value(goal, s, np.random.default_rng(1)) for s in task.slots}
    draft = f"here is the note : {task.document(wrong)}"
    forth = CORPUS_USERS["forthcoming"]
    leaves = [GIVE_UP in ScriptedUser(task, goal, forth, np.random.default_rng(i)).reply("which day ?") for i in range(400)]
    assert 0.85 < np.mean(leaves) < 0.95  # p_quit_on_question 0.9
    real = [ScriptedUser(task, goal, REAL_USER, np.random.default_rng(i)) for i in range(200)]
    assert not any(GIVE_UP in u.reply("who is the note for ?") or GIVE_UP in u.reply("which day ?") for u in real)
    corrected = task.parse_user(ScriptedUser(task, goal, rejecting(forth), np.random.default_rng(0)).reply(draft))
    assert corrected == {s: goal[s] for s in task.slots}  # every wrong slot named at once
    named = [task.parse_user(r) for r in (ScriptedUser(task, goal, rejecting(REAL_USER), np.random.default_rng(i)).reply(draft) for i in range(200))]
    assert max(len(n) for n in named) == 1 and 0.1 < np.mean([bool(n) for n in named]) < 0.35  # one detail, seldom
    arith = get_task("arith-chat")
    g = arith.sample_goal(np.random.default_rng(0))
    reply = ScriptedUser(arith, g, rejecting(forth), np.random.default_rng(0)).reply(f"the answer is {g['answer'] + 1} .")
    assert reply.startswith(REJECT) and arith.parse_user(reply) == {"start": g["start"], "change": g["change"]}


def rejecting(persona):
    """``persona`` rejecting every wrong answer, without mistakes or volunteered details: a test sees the rejection alone."""
    from dataclasses import replace

    return replace(persona, p_accept_wrong=0.0, p_mistake=0.0, p_unprompted_reveal=0.0)


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


def test_missing_or_empty_dialogue_files_are_named(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        dlg.read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n  \n")
    with pytest.raises(InputError, match="empty.jsonl: the file holds no rows"):
        dlg.read_jsonl(tmp_path / "empty.jsonl")


def test_graded_simulators_move_per_turn_behaviour_from_the_real_users_to_the_forthcoming_one():
    from dataclasses import replace

    from calirl_lite.toy_tasks import graded_persona

    assert replace(graded_persona(0.0), name="real") == REAL_USER
    far, half = graded_persona(1.0), graded_persona(0.5)
    forth = CORPUS_USERS["forthcoming"]
    fields = ("p_accept_wrong", "p_unprompted_reveal", "p_point_out", "p_quit_on_question", "corrections")
    assert [getattr(far, f) for f in fields] == [getattr(forth, f) for f in fields]
    assert far.reveal_first == half.reveal_first == REAL_USER.reveal_first  # they open as the real users do
    assert half.p_accept_wrong == pytest.approx((REAL_USER.p_accept_wrong + forth.p_accept_wrong) / 2)
    assert half.p_quit_on_question == pytest.approx(forth.p_quit_on_question / 2)
    with pytest.raises(ValueError, match="w must be in"):
        graded_persona(1.5)


def test_a_single_error_simulator_differs_from_the_real_users_in_that_one_behaviour():
    import dataclasses

    import numpy as np

    from calirl_lite.task_family import REAL_USER, SINGLE_ERRORS, ScriptedUser, single_error_persona
    from calirl_lite.tasks import get_task

    real = dataclasses.asdict(REAL_USER)
    for error, (_, moved) in SINGLE_ERRORS.items():
        changed = {k for k, v in dataclasses.asdict(single_error_persona(error)).items() if v != real[k]} - {"name"}
        assert changed == set(moved), error
        assert dataclasses.replace(single_error_persona(error, 0.0), name="real") == REAL_USER
    assert single_error_persona("sycophantic", 0.5).p_accept_wrong == 0.525
    task = get_task("arith-chat")
    goal = task.sample_goal(np.random.default_rng(0))
    wrong = f"the answer is {goal['answer'] + 1} ."
    assert ScriptedUser(task, goal, single_error_persona("sycophantic"), np.random.default_rng(0)).reply(wrong).endswith("[[TERMINATE CHAT]]")
    assert "bye" in ScriptedUser(task, goal, single_error_persona("question-averse"), np.random.default_rng(0)).reply(task.ask("start", goal))
    with pytest.raises(ValueError, match="unknown simulator error 'rude'"):
        single_error_persona("rude")
