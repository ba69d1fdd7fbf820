"""The optional LLM judge of interactivity (endpoint or local model) and math-verify for real math answers."""

import json

import pytest

from calirl_lite.cli import main
from calirl_lite.dialogue import Dialogue, Message
from calirl_lite.evaluate import EvaluateConfig, evaluate_seeds
from calirl_lite.judge import EndpointJudge, LocalJudge, interactivity, make_judge, parse_score
from calirl_lite.mathcheck import math_correct


def dialogue(*texts):
    return Dialogue("arith-chat", "t", {"answer": 3}, [Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)])


@pytest.mark.parametrize("reply, score", [("Score: 7", 0.7), ("score=10", 1.0), ("I would say 4.5", 0.45), ("Score: 0 (it guessed)", 0.0)])
def test_a_judge_reply_is_parsed_for_its_score(reply, score):
    assert parse_score(reply) == pytest.approx(score)


@pytest.mark.parametrize("reply", ["great dialogue!", "between 3 and 7", "Score: 12", "Score: high"])
def test_a_reply_without_one_score_is_an_error_that_quotes_it(reply):
    with pytest.raises(ValueError, match="no single score"):
        parse_score(reply, "judge x")


def test_the_endpoint_judge_sees_the_dialogue_at_temperature_0_and_scores_it(chat_stub):
    url, calls, reply = chat_stub
    reply[0] = lambda body, n: "Score: 8" if "the answer is 3" in body["messages"][0]["content"] else "Score: 2"
    judge = EndpointJudge(url + "/v1", "judge-model")
    good, bad = dialogue("how many ?", "how many at the start ?", "3", "the answer is 3 ."), dialogue("how many ?", "the answer is 9 .")
    assert interactivity(judge, [good, bad]) == pytest.approx(0.5)
    assert calls[0]["model"] == "judge-model" and calls[0]["temperature"] == 0.0
    assert "Rate the assistant's INTERACTIVITY" in calls[0]["messages"][0]["content"] and "answer" not in json.dumps(calls[0]).split("Conversation")[0]


def test_evaluate_adds_the_judges_interactivity_per_seed(chat_stub, capsys, ctx):
    url, calls, reply = chat_stub
    reply[0] = lambda body, n: "Score: 6"
    r = evaluate_seeds(EvaluateConfig.make(seeds=(0, 1), n_eval=3), ctx, progress=False, judge=EndpointJudge(url + "/v1", "j"))
    assert r.per_seed[0]["interactivity"] == pytest.approx(0.6) and r.mean["interactivity"] == pytest.approx(0.6)
    assert len(calls) == 6  # every dialogue of every seed is judged once
    reply[0] = lambda body, n: "no idea"
    assert main(["evaluate", "--seeds", "0", "--n-eval", "2", "--judge-endpoint", url + "/v1", "--judge-model", "j"]) == 2
    assert "no single score" in capsys.readouterr().err


def test_judge_settings_and_an_unreachable_judge_are_clear_errors(capsys):
    assert make_judge() is None
    with pytest.raises(ValueError, match="needs the model name"):
        make_judge(endpoint="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="not both"):
        make_judge(endpoint="http://x/v1", model="m", local="folder")
    assert main(["evaluate", "--seeds", "0", "--n-eval", "2", "--judge-endpoint", "http://127.0.0.1:9/v1", "--judge-model", "j"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_local_judge_model_that_gives_no_score_is_named(tmp_path, world):
    judge = LocalJudge(str(world.model_dir))  # the toy LM cannot judge: its reply has no score
    with pytest.raises(ValueError, match="local judge .*model"):
        judge.score(dialogue("hi", "the answer is 3 ."))


@pytest.mark.parametrize("response, reference, right", [
    (r"so the answer is $\frac{1}{2}$", "0.5", True), (r"\boxed{\frac{3}{4}}", r"$0.75$", True), ("the answer is 42 .", "42", True),
    ("the answer is 41 .", "42", False), (r"$x = 2\sqrt{2}$", r"$\sqrt{8}$", True), ("no idea", "3", False),
])
def test_math_answers_are_checked_by_math_verify(response, reference, right):
    assert math_correct(response, reference) is right


@pytest.mark.parametrize("reply", ["-5", "Score: -5", "Score: 1e1", "Score: 7\nScore: 3", "7 and 7", "Score: 10.5"])
def test_a_reply_with_no_single_score_in_range_is_refused(reply):
    with pytest.raises(ValueError, match="no single score"):
        parse_score(reply)


def test_the_score_parser_takes_linear_time_on_hostile_replies():
    import time

    start = time.perf_counter()
    for reply in ("Score" + " " * 200_000 + "x", "score " * 100_000, "1" * 1_000_000):
        with pytest.raises(ValueError):
            parse_score(reply)
    assert parse_score("Score: 7.0, that is Score: 7") == pytest.approx(0.7)
    assert time.perf_counter() - start < 5  # the old pattern took 9 s on 20,000 spaces alone


def test_an_answer_is_checked_from_any_thread():
    import threading

    out = []
    worker = threading.Thread(target=lambda: out.extend([math_correct("so it is \\boxed{12}", "12"), math_correct("it is 13", "12")]))
    worker.start()
    worker.join(timeout=120)
    assert out == [True, False]


ADVERSARIAL = ["9**9**9**9", "10^10^10", "$(10^{10})!$", "$\\boxed{10^{10^{10}}}$", "\\frac{" * 500 + "1" + "}{2}" * 500,
               "\\left(" * 2000 + "1" + "\\right)" * 2000, "1" * 1_000_000]


@pytest.mark.parametrize("answer", ADVERSARIAL, ids=lambda a: a[:12])
def test_an_answer_that_would_stall_the_check_counts_as_wrong_in_its_budget(answer):
    import threading
    import time

    math_correct("1", "1")  # math-verify's first use imports its LaTeX machinery: not this answer's time
    start = time.perf_counter()
    assert math_correct(answer, "3") is False
    assert time.perf_counter() - start < 3  # the budget is ANSWER_SECONDS (0.4 s); 3 s leaves room for a busy machine, not for a stall
    out = []
    worker = threading.Thread(target=lambda: out.append(math_correct(answer, "3")))  # the helper-process path, as in GRPO's reward threads
    worker.start()
    worker.join(timeout=60)
    assert out == [False]
