"""CollabLLM's MATH-Chat and MediumDocEdit-Chat as tasks of the kit: goals from local files in the hub's schema (offline),
CollabLLM's user-simulator prompt, and how the assistant's final answer or document is read and scored."""

import json
import zlib
from pathlib import Path

import pytest

from calirl_lite import sources
from calirl_lite.collabllm_tasks import collabllm_user_prompt, collabllm_user_reply
from calirl_lite.dialogue import TERMINATE, Dialogue, Message
from calirl_lite.inputs import check_dialogue, check_goal
from calirl_lite.io import InputError
from calirl_lite.tasks import get_task, scored_tasks

FIXTURES = Path(__file__).parent / "fixtures"
MATH_FILE = FIXTURES / "collabllm-tasks-math-hard.jsonl"
DOC_FILE = FIXTURES / "collabllm-tasks-medium.jsonl"
MATH, DOC = get_task("collabllm-math"), get_task("collabllm-docedit")
ROWS = {path: [json.loads(line) for line in path.read_text().splitlines()] for path in (MATH_FILE, DOC_FILE)}


def goals(task, split, path):
    return sources.task_goals(task, split, source=str(path))


def test_both_tasks_are_registered_with_their_metrics_and_no_scripted_users():
    assert (MATH.metric, DOC.metric) == ("accuracy", "bleu")
    assert {"collabllm-math", "collabllm-docedit"} <= set(scored_tasks())
    with pytest.raises(NotImplementedError, match="a language model plays the user"):
        MATH.first_message({}, {})


@pytest.mark.parametrize("task, path, shared", [(MATH, MATH_FILE, "101"), (DOC, DOC_FILE, "201")])
def test_goals_load_from_a_local_file_one_per_conversation(task, path, shared):
    train, test = goals(task, "train", path), goals(task, "test", path)
    ids = [g["task_id"] for g in train + test]
    assert sorted(ids) == sorted({str(r["conv_id"]) for r in ROWS[path]}) and len(ids) == 3  # 4 rows, 3 conversations
    assert [r["conv_id"] for r in ROWS[path]].count(int(shared)) == 2 and ids.count(shared) == 1
    rows = {str(r["conv_id"]): r for r in ROWS[path]}
    for g in train + test:
        row, goal = rows[g["task_id"]], g["goal"]
        assert (goal["problem"], goal["reference"], goal["conv_id"]) == (row["single_turn_prompt"], row["single_turn_completion"], g["task_id"])
        check_goal(goal, task.name)  # every field the task's users and score read
    assert goals(task, "test", path) == test  # the same every time


def test_the_math_goal_holds_the_references_boxed_answer():
    answers = {g["task_id"]: g["goal"]["answer"] for g in goals(MATH, "train", MATH_FILE) + goals(MATH, "test", MATH_FILE)}
    assert answers == {"101": "96", "102": "\\frac{10}{3}", "103": "6"}


def test_the_test_split_is_one_request_in_five_by_a_hash_of_the_hidden_request():
    for task, path in ((MATH, MATH_FILE), (DOC, DOC_FILE)):
        test = {g["task_id"] for g in goals(task, "test", path)}
        hashed = {str(r["conv_id"]) for r in ROWS[path] if zlib.crc32(r["single_turn_prompt"].encode()) % sources.COLLABLLM_TEST_BUCKETS == 0}
        assert test == hashed and test and len(test) < 3  # both splits hold goals in each fixture
    assert sources.COLLABLLM_TEST_BUCKETS == 5
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        goals(MATH, "eval", MATH_FILE)
    with pytest.raises(ValueError, match="CollabLLM's tasks .* only"):
        sources.task_goals(get_task("math-chat"), "test", source=str(MATH_FILE))


def test_the_hub_id_and_split_constants_are_the_ones_read(monkeypatch):
    read = []
    local = sources.load_collabllm

    def fake_hub(source, split="train", limits=None):
        read.append((source, split))
        return local(str(MATH_FILE if "math" in source else DOC_FILE))

    monkeypatch.setattr(sources, "load_collabllm", fake_hub)
    assert [g["task_id"] for g in sources.task_goals(MATH, "train")] == ["101", "102"]
    sources.task_goals(DOC, "test")
    assert read == [("collabllm/collabllm-multiturn-math-hard", "train"), ("collabllm/collabllm-multiturn-medium", "train")]
    assert read == [(sources.COLLABLLM_TASK_DATA[t].hub_id, sources.COLLABLLM_TASK_DATA[t].hub_split) for t in ("collabllm-math", "collabllm-docedit")]
    assert read[0][0] == sources.collabllm_source("math-hard") and read[1][0] == sources.collabllm_source("medium")


def test_a_malformed_row_is_refused_naming_the_file_and_line(tmp_path):
    rows = [dict(r) for r in ROWS[MATH_FILE]]
    rows[2]["single_turn_completion"] = 96
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"bad.jsonl:3: column 'single_turn_completion' must be str"):
        goals(MATH, "train", bad)


def test_logged_contexts_are_dialogues_of_the_registered_tasks():
    for kind, path, task in (("math", MATH_FILE, MATH), ("medium", DOC_FILE, DOC)):
        contexts = sources.collabllm_contexts(sources.load_collabllm(str(path)), kind)
        assert len(contexts) == 4 and {d.task for d in contexts} == {task.name}
        for d in contexts:
            check_dialogue(d)  # the goal is one the task can read


# ----------------------------------------------------------------------------- the user simulator's prompt


def test_the_user_prompt_holds_the_task_the_hidden_request_the_chat_and_the_signal():
    goal = goals(MATH, "train", MATH_FILE)[0]["goal"]
    history = [Message("user", "hey, i need the sum of some divisors"), Message("assistant", "Sure! Which number?")]
    prompt = collabllm_user_prompt(MATH, goal, history)
    desc, hidden = prompt.index("question answering"), prompt.index(goal["problem"])
    chat = prompt.index("**User**: hey, i need the sum of some divisors\n**Assistant**: Sure! Which number?")
    assert desc < hidden < chat < prompt.index(TERMINATE) and prompt.rstrip().endswith(TERMINATE)
    assert goal["reference"] not in prompt and "96" not in prompt  # the reference stays hidden from the user too
    assert '"response"' in prompt and '"thought"' in prompt and '"current_answer"' in prompt
    opening = collabllm_user_prompt(DOC, goals(DOC, "train", DOC_FILE)[0]["goal"], [])
    assert "document editing" in opening and "Learning to Rest" in opening and "**User**" not in opening and "(empty" in opening


@pytest.mark.parametrize("reply, message", [
    ('{"current_answer": "none yet", "thought": "be vague", "response": "can u help with divisors"}', "can u help with divisors"),
    ('```json\n{"current_answer": "96", "thought": "right", "response": "' + TERMINATE + '"}\n```', TERMINATE),
    ('{"current_answer": "x", "thought": "t", "response": "the number is 77", "thought": "cut sh', "the number is 77"),  # cut short
    ("just tell me the sum", "just tell me the sum"),  # no JSON: the text is the message
])
def test_the_user_reply_is_the_response_of_its_json(reply, message):
    assert collabllm_user_reply(reply) == message


# ----------------------------------------------------------------------------- math: reading and scoring

MATH_GOAL = {"conv_id": "102", "problem": "If x/4 = 5/6, what is x?", "reference": "x = \\boxed{\\frac{10}{3}}", "answer": "\\frac{10}{3}"}


@pytest.mark.parametrize("text, kind, right", [
    ("So $x = \\boxed{\\frac{10}{3}}$.", "answer", True),
    ("Multiply both sides by 4: the answer is 10/3.", "answer", True),
    ("The answer is:\n$$x = \\frac{10}{3}$$", "answer", True),
    ("Thus $x = \\frac{20}{6} = \\frac{10}{3}$. Does that help?", "answer", True),
    ("Therefore, x = 3.", "answer", False),
    ("The answer is \\boxed{\\frac{5}{6}}", "answer", False),
    ("Could you share the equation?", "ask", None),
    ("Let me think: 20/6 simplifies.", "other", None),
])
def test_the_math_answer_is_the_boxed_or_stated_one(text, kind, right):
    intent = MATH.parse_assistant(text)
    assert intent.kind == kind
    if right is not None:
        assert MATH.answer_is_right(MATH_GOAL, intent) is right


def math_chat(*assistant):
    messages = []
    for text in assistant:
        messages += [Message("user", "solve it please"), Message("assistant", text)]
    return Dialogue("collabllm-math", "102", MATH_GOAL, messages)


def test_math_accuracy_is_that_of_the_last_answer():
    assert MATH.score(math_chat("What is the equation?", "x is \\boxed{\\frac{10}{3}}.")) == {"accuracy": 1.0}
    assert MATH.score(math_chat("The answer is 3.")) == {"accuracy": 0.0}
    assert MATH.score(math_chat("The answer is 10/3.", "Sorry, the answer is 3.", "Any questions?")) == {"accuracy": 0.0}
    assert MATH.score(math_chat("The answer is 3.", "Oops: the answer is 10/3.", "Anything else?")) == {"accuracy": 1.0}
    assert MATH.score(math_chat("What is the equation?")) == {"accuracy": 0.0}  # no answer given


# ----------------------------------------------------------------------------- doc editing: reading and scoring

ARTICLE = ROWS[DOC_FILE][0]["single_turn_completion"]
POOR = ("Big models are the future of everything. Nobody should bother with small ones, since scale always wins in the end "
        "and hardware gets cheaper each year. Buy the largest cluster you can afford, train the largest network you can, "
        "and never look back at the tiny ones again.")


def doc_chat(*assistant):
    messages = []
    for text in assistant:
        messages += [Message("user", "write my article"), Message("assistant", text)]
    goal = {"conv_id": "201", "problem": "Please write an article …", "reference": ARTICLE}
    return Dialogue("collabllm-docedit", "201", goal, messages)


def test_a_draft_is_read_without_its_lead_in_and_closing_and_questions_are_no_draft():
    assert DOC.draft(f"Here is the article:\n\n{ARTICLE}\n\nWould you like any changes?") == ARTICLE
    assert DOC.draft(f"{ARTICLE}\n\nLet me know if you want a different tone!") == ARTICLE
    many = "Before I write it, a few questions to get it right:\n" + "\n".join(f"{i}. What about point number {i} of the article?" for i in range(1, 9))
    assert DOC.parse_assistant(many).kind == "ask" and DOC.parse_assistant("Who will read it?").kind == "ask"
    assert DOC.parse_assistant("Sure, happy to help with that.").kind == "other"


def test_doc_bleu_is_that_of_the_last_draft_on_the_0_1_scale():
    perfect = DOC.score(doc_chat("What is it about?", f"Here is the article:\n\n{ARTICLE}\n\nWould you like any changes?"))
    assert perfect == {"bleu": pytest.approx(1.0)}
    poor = DOC.score(doc_chat(POOR))["bleu"]
    assert 0.0 < poor < 0.2
    assert DOC.score(doc_chat(ARTICLE, POOR, "Anything else?")) == {"bleu": pytest.approx(poor)}  # the last draft counts
    assert DOC.score(doc_chat("What is it about?")) == {"bleu": 0.0}  # no draft
    goal = {"reference": ARTICLE}
    assert DOC.answer_is_right(goal, DOC.parse_assistant(ARTICLE)) and not DOC.answer_is_right(goal, DOC.parse_assistant(POOR))
