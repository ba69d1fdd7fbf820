"""The English world's math-chat: goals from reasoning-gym, scripted English users that read free text as a person would."""

import json

import numpy as np
import pytest

from calirl_lite.dialogue import TERMINATE
from calirl_lite.english_tasks import MathChat
from calirl_lite.sources import math_chat_goals, task_goals
from calirl_lite.task_family import REAL_USER, ScriptedUser
from calirl_lite.tasks import get_task

PROBLEM = ("James gets 160 emails a day. 30% of those emails don't require any response. James responds to the rest of them. "
           "How many emails does James respond to in a 5 day work week? Give the result as your final answer. Do not include units.")
GOAL = MathChat.from_problem(PROBLEM, 560)
TASK = get_task("math-chat")


def test_a_problem_is_cut_into_the_question_and_the_facts_that_hold_its_quantities():
    assert GOAL == {"question": "How many emails does James respond to in a 5 day work week?", "answer": "560",
                    "facts": "James gets 160 emails a day. 30% of those emails don't require any response. James responds to the rest of them."}
    assert MathChat.from_problem("How many apples are there? Give the result as your final answer.", 3) is None  # nothing to ask for


def test_train_and_test_goals_come_from_disjoint_problem_templates():
    train, test = math_chat_goals("train", 200), math_chat_goals("test", 200)
    assert len(train) == len(test) == 200 and math_chat_goals("test", 200) == test  # the same every time, offline
    assert not {t["goal"]["question"] for t in train} & {t["goal"]["question"] for t in test}
    assert task_goals(TASK, "test")[:3] == math_chat_goals("test")[:3]
    with pytest.raises(ValueError, match="has no goals"):
        task_goals(get_task("chitchat"), "test")
    with pytest.raises(ValueError, match="a task of the toy world: give the world"):
        task_goals(get_task("arith-chat"), "test")


@pytest.mark.parametrize("text, kind, right", [
    ("The answer is 560.", "answer", True),
    ("He answers 112 emails a day, so in a 5 day week that makes 560 in total.", "answer", True),
    ("160 * 0.7 = 112. 112 * 5 = 560", "answer", True),
    (r"So James responds to \boxed{560} emails.", "answer", True),
    ("Let me think. 160 * 0.7 = 112. So the final answer is 560. Does that help?", "answer", True),
    ("He responds to 500 emails.", "answer", False),
    ("THE ANSWER IS 560", "answer", True),
    ("How many emails does he get per day?", "ask", None),
    ("Could you tell me the numbers in the problem", "ask", None),
    ("Sure, I can help! Please share the details of the problem.", "ask", None),
    ("what do you know about his emails ?", "ask", None),
    ("So, if he gets paid 195 every day, the total amount of", "other", None),  # working cut short
    ("1. Read the problem.\n2. Find the numbers.\n3", "other", None),  # a numbered list is no answer
    ("Hello! I am happy to help you with math.", "other", None),
    ("Let's break it down. 10 * 1 plus 10 * 1 equals 10. Now 10 * 10 * x = 10x. Now we have 10x, so we need to", "other", None),  # "= 10x" is working
    ('He answers 112 a day. So over the week: "560."', "answer", True),  # a full stop inside quotes ends the text
    ('He gets 160 a day (and 800 a week?) I need the share he answers.', "ask", None),  # a question inside brackets ends its sentence
])
def test_the_user_reads_answers_and_questions_in_any_words(text, kind, right):
    intent = TASK.parse_assistant(text)
    assert intent.kind == kind
    if kind == "answer":
        assert TASK.answer_is_right(GOAL, intent) is right


def test_the_english_user_asks_vaguely_gives_the_facts_when_asked_and_judges_the_answer():
    user = ScriptedUser(TASK, GOAL, REAL_USER, np.random.default_rng(0))
    first = user.first_message()
    assert GOAL["question"] in first and "160" not in first  # the quantities are left out
    reply = user.reply("Could you tell me more about the problem?")
    assert "emails a day. 30% of those" in reply or any(p in reply for p in TASK.phrases["not_sure"])  # the facts (a number may be misremembered)
    accepted = user.reply("So the answer is 560.")
    assert accepted.endswith(TERMINATE) and any(p in accepted for p in TASK.phrases["accept"])
    wrong = ScriptedUser(TASK, GOAL, REAL_USER, np.random.default_rng(1)).reply("The answer is 12.")
    assert any(p in wrong for p in TASK.phrases["reject"]) or TERMINATE in wrong  # rejected (or, rarely, accepted by a careless user)


def test_the_english_users_write_with_variety():
    goals = [t["goal"] for t in math_chat_goals("test", 40)]
    openers = {TASK.first_message(g, {}).replace(g["question"], "{q}") for g in goals}
    assert len(openers) >= 3
    replies = {ScriptedUser(TASK, GOAL, REAL_USER, np.random.default_rng(s)).reply("Hmm.") for s in range(20)}
    assert len(replies) >= 2


def test_the_parsing_tally_counts_every_turn_and_writes_a_sample_to_check(tmp_path, ctx):
    from calirl_lite.bench import ParsingBench, bench_parsing

    r = bench_parsing(ParsingBench.make(profile="tiny", dialogues=4, sample=3, out=str(tmp_path / "sample.jsonl")), ctx)
    assert r["dialogues"] == 4 and sum(r["read_as"].values()) == r["turns"] > 0
    sample = [json.loads(line) for line in (tmp_path / "sample.jsonl").read_text().splitlines()]
    assert len(sample) == 3 and all(s["check"] == "" and s["read_as"] in ("answer", "ask", "other") for s in sample)


# ----------------------------------------------------------------------------- doc-chat

DOC = get_task("doc-chat")
NOTE = {"name": "Anna", "place": "the library", "day": "Friday", "tone": "formal"}
NOTE["target"] = DOC.document(NOTE)


def test_doc_chat_goals_split_every_combination_in_two_with_none_in_both():
    train, test = task_goals(DOC, "train"), task_goals(DOC, "test")
    assert len(train) + len(test) == 16 * 12 * 7 * 2 and task_goals(DOC, "test") == test
    key = lambda t: tuple(t["goal"][s] for s in DOC.slots)  # noqa: E731
    assert not {key(t) for t in train} & {key(t) for t in test}
    assert {t["goal"]["tone"] for t in test[:20]} == {"formal", "casual"}  # shuffled, not sorted
    assert all(t["goal"]["target"] == DOC.document(t["goal"]) for t in test[:20])


@pytest.mark.parametrize("text, kind, slots, wrong", [
    ("Here is the note:\n\nDear Anna,\n\nI would like to invite you to meet at the library on Friday.\n\nKind regards", "answer", (), []),
    ("Sure!\n\n**Dear anna,**\n\nCould we meet at The Library on friday?\n\nBest, Sam", "answer", (), []),  # any case, a question inside
    ("Dear Anna,\n\nLet's meet at the park on Friday.\n\nRegards", "answer", (), ["place"]),
    ("Hi Anna!\n\nWant to meet at the library on Friday? See you!", "answer", (), ["tone"]),
    ("Here's a draft:\n\nDear [Name],\n\nI'd like to meet at [Location] on [Day].", "answer", (), ["name", "place", "day"]),
    ("Hi! Sure, I can help. Who is the note for?", "ask", ("name",), None),
    ("When and where would you like to meet?", "ask", ("place", "day"), None),
    ("Should it be formal or casual?", "ask", ("tone",), None),
    ("Could you tell me more", "ask", ("name", "place", "day", "tone"), None),  # about nothing in particular: everything
    ("Hello! I'd be happy to help you write a note.", "other", (), None),
    ("Dear Sarah,\n\nI hope this message finds you well. I would like to invite you", "answer", (), ["name", "place", "day"]),  # cut short
    ("Anna,\n\nLet's meet at the library on Friday. See you then!", "answer", (), ["tone"]),  # a bare name opens it
    ("Sure! How can I assist you today?", "ask", ("name", "place", "day", "tone"), None),
    ("What's on your plate? Let's go to the park!", "other", (), None),  # a question, but not about the note
    ("Loved it.\n\nBest,\nElla and the whole team at the office", "other", (), None),  # a sign-off opens no note
])
def test_the_doc_user_reads_drafts_and_questions_in_any_words(text, kind, slots, wrong):
    intent = DOC.parse_assistant(text)
    assert intent.kind == kind and intent.slots == slots
    if kind == "answer":
        assert DOC.wrong_slots(NOTE, intent) == wrong and DOC.answer_is_right(NOTE, intent) is (not wrong)


def test_the_doc_user_asks_vaguely_gives_what_is_asked_and_judges_the_draft():
    user = ScriptedUser(DOC, NOTE, REAL_USER, np.random.default_rng(0))
    first = user.first_message()
    assert DOC.parse_user(first) == {} and first in DOC.OPENERS  # no detail given
    reply = user.reply("Where will you meet?")
    assert DOC.parse_user(reply).get("place") in ("the library", None)
    accepted = user.reply(f"Here it is:\n\n{NOTE['target']}")
    assert accepted.endswith(TERMINATE) and any(p in accepted for p in DOC.phrases["accept"])
    openers = {DOC.first_message(t["goal"], {}) for t in task_goals(DOC, "test")[:40]}
    assert len(openers) >= 3


def test_doc_chat_scores_the_last_draft_by_bleu_and_its_details():
    from calirl_lite.dialogue import Dialogue, Message

    wrong_day = NOTE["target"].replace("Friday", "Monday")
    d = Dialogue("doc-chat", "d", NOTE, [Message("user", "A note, please."), Message("assistant", wrong_day), Message("user", "No."),
                                         Message("assistant", NOTE["target"])])
    assert DOC.score(d) == {"bleu": pytest.approx(1.0), "details": 1.0}
    d.messages.append(Message("assistant", wrong_day))
    s = DOC.score(d)
    assert s["details"] == 0.75 and 0.3 < s["bleu"] < 1.0
