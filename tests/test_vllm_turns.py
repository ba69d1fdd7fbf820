"""TRL's colocated vLLM engine for the policy's turns, tested where vLLM cannot be installed: the GRPOConfig arguments,
the error where vLLM is missing, and the sampling path against a stand-in engine with ``vllm.LLM.generate``'s output
shape (it samples with the kit's own decoder, so its turns can be set beside the kit's engine's). A real vLLM engine
has not sampled here."""

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from calirl_lite import trainer as TR
from calirl_lite import vllm_turns
from calirl_lite.chat import turn_end_id
from calirl_lite.decode import generate
from calirl_lite.memory import dialogue_tokens
from calirl_lite.rollout import Policy, rollout
from calirl_lite.stages import TrainConfig, train_stage
from calirl_lite.tasks import get_task
from calirl_lite.users import ScriptedUsers, make_user
from calirl_lite.vllm_turns import VllmStream, colocated_engine, require_vllm, synced_engine

ARITH = get_task("arith-chat")
NO_VLLM = importlib.util.find_spec("vllm") is None


class FakeLLM:
    """``vllm.LLM.generate``'s interface and output shape (``RequestOutput.outputs[0]``: ``token_ids`` without a
    forced end, ``logprobs`` as one dict per token from token id to an object with ``logprob``), sampling with the
    kit's own decoder on a real model; it records every request."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self.requests = model, tokenizer, []

    def generate(self, prompts, sampling_params, use_tqdm=True):
        outputs = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            self.requests.append((list(prompt["prompt_token_ids"]), params))
            assert params["stop_token_ids"] == [turn_end_id(self.tokenizer)] and params["logprobs"] == 0
            torch.manual_seed(params["seed"])
            g = generate(self.model, self.tokenizer, [prompt["prompt_token_ids"]], params["max_tokens"], params["temperature"])[0]
            ids, lps = (g.ids[:-1], g.logprobs[:-1]) if g.forced_end else (g.ids, g.logprobs)  # vLLM adds no end of its own
            logprobs = [{t: SimpleNamespace(logprob=lp, rank=1)} for t, lp in zip(ids, lps)]
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, logprobs=logprobs, finish_reason="stop")]))
        return outputs


def params(**kw):
    return dict(kw)  # stands in for vllm.SamplingParams


@pytest.fixture(scope="module")
def lm(world):
    return world.load_model()


def test_without_vllm_installed_a_vllm_run_stops_naming_the_install(ctx, tmp_path):
    if not NO_VLLM:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ImportError, match="pip install vllm"):
        require_vllm()
    stage = train_stage(TrainConfig.make(method="oracle", profile="colab-t4", vllm=True, out_dir=str(tmp_path / "run")), ctx)
    with pytest.raises(ImportError, match="pip install vllm"):
        TR.grpo_args(stage)
    with pytest.raises(ValueError, match="GPU profile"):
        TrainConfig.make(method="oracle", vllm=True)  # the tiny profile samples on the CPU


def test_the_vllm_setting_becomes_trls_colocate_arguments(ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(TR, "require_vllm", lambda: None)
    cfg = TrainConfig.make(method="oracle", profile="colab-t4", vllm=True, vllm_memory=0.25, max_messages=4, out_dir=str(tmp_path / "run"))
    stage = train_stage(cfg, ctx)
    args = TR.grpo_args(stage)
    prof = stage.profile
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization, args.vllm_enable_sleep_mode) == (True, "colocate", 0.25, False)
    assert args.vllm_max_model_length == 2 * dialogue_tokens(4, prof.max_new_tokens, prof.user_tokens)
    plain = TR.grpo_args(train_stage(TrainConfig.make(method="oracle", profile="colab-t4", max_messages=4, out_dir=str(tmp_path / "p")), ctx))
    assert plain.use_vllm is False
    # the setting is part of a run's identity only where it is on: runs made before it keep their folders
    assert "vllm" not in TrainConfig.make(method="oracle").identity() and cfg.identity()["vllm"] is True


def test_the_engine_is_found_on_the_trainer_only_in_colocate_mode():
    synced = []
    engine = object()
    trainer = SimpleNamespace(use_vllm=True, vllm_mode="colocate", vllm_generation=SimpleNamespace(llm=engine, sync_weights=lambda: synced.append(1)))
    assert colocated_engine(trainer) is engine and not synced
    assert synced_engine(trainer) is engine and synced == [1]  # outside a step the weights are pushed first
    assert colocated_engine(SimpleNamespace(use_vllm=True, vllm_mode="server")) is None
    assert colocated_engine(SimpleNamespace(use_vllm=False)) is None and synced_engine(SimpleNamespace()) is None


def test_a_rollout_through_the_engine_keeps_the_same_record_as_the_kits_own(world, lm, monkeypatch):
    """At temperature 0 the stand-in engine and the kit's engine write the same turns; the engine is asked with the
    dialogue so far, turn after turn, and the record (ids, mask, log-probs) is built the same way."""
    monkeypatch.setattr(vllm_turns, "sampling_params_class", lambda: params)
    model, tok = lm
    goals = [t["goal"] for t in world.tasks("arith-chat", "test")[:4]]
    fake = FakeLLM(model, tok)
    own = rollout(Policy(model, tok, temperature=0.0, max_new_tokens=12), ScriptedUsers(), ARITH, goals, max_messages=6, seed=1)
    via = rollout(Policy(model, tok, temperature=0.0, max_new_tokens=12, engine=fake), ScriptedUsers(), ARITH, goals, max_messages=6, seed=1)
    assert [d.messages for d in via.dialogues] == [d.messages for d in own.dialogues]
    assert via.completion_ids == own.completion_ids and via.env_mask == own.env_mask
    assert np.allclose(np.concatenate(via.logprobs), np.concatenate(own.logprobs), atol=1e-4)
    end = turn_end_id(tok)
    for _, p in fake.requests:
        assert p["max_tokens"] == 12 and set(p["logit_bias"]) == set(tok.all_special_ids) - {end}  # no chat-structure token but the end
    first = fake.requests[: len(goals)]
    assert [ids for ids, _ in first] == own.prompt_ids  # then each dialogue's ids so far, growing turn by turn
    assert all(len(a[0]) < len(b[0]) for a, b in zip(first, fake.requests[len(goals):]))


def test_a_forced_end_is_appended_where_the_engine_ran_out_of_tokens(lm):
    _, tok = lm
    end = turn_end_id(tok)
    llm = SimpleNamespace(generate=lambda prompts, sampling_params, use_tqdm: [
        SimpleNamespace(outputs=[SimpleNamespace(token_ids=[50, 51], logprobs=[{50: SimpleNamespace(logprob=-1.0)}, {51: SimpleNamespace(logprob=-2.0)}])]),
        SimpleNamespace(outputs=[SimpleNamespace(token_ids=[52, end], logprobs=[{52: SimpleNamespace(logprob=-0.5)}, {end: SimpleNamespace(logprob=-0.1)}])])])
    stream = VllmStream(llm, tok, [[40, 41], [42]], params=params)
    cut, ended = stream.sample(2, 1.0)
    assert (cut.ids, cut.logprobs, cut.forced_end) == ([50, 51, end], [-1.0, -2.0, 0.0], True)
    assert (ended.ids, ended.logprobs, ended.forced_end) == ([52, end], [-0.5, -0.1], False)
    assert cut.text == tok.decode([50, 51], skip_special_tokens=True).strip()
    stream.keep([1])
    stream.extend([[60]])
    assert stream.rows == [[42, 52, end, 60]]


def test_a_grpo_step_samples_the_policys_turns_with_the_trainers_engine(ctx, tmp_path, monkeypatch):
    """The rollout_func of ``make_trainer`` takes the engine from the trainer (TRL having pushed the weights into it)
    and the step learns from what it sampled, TRL's importance-sampling correction included."""
    monkeypatch.setattr(vllm_turns, "sampling_params_class", lambda: params)
    stage = train_stage(TrainConfig.make(method="oracle", steps=1, prompts_per_step=2, group_size=2, max_messages=4, out_dir=str(tmp_path / "run")), ctx)
    rng = np.random.default_rng(0)
    trainer, stats = TR.make_trainer(stage, [TR.Start(ARITH.sample_goal(rng)) for _ in range(2)], make_user("real", stage.models))
    fake, synced = FakeLLM(trainer.model, trainer.processing_class), []
    trainer.use_vllm, trainer.vllm_mode, trainer._last_loaded_step = True, "colocate", -1  # what TRL sets up with use_vllm
    trainer.vllm_generation = SimpleNamespace(llm=fake, sync_weights=lambda: synced.append(trainer.state.global_step))
    trainer.train()
    assert trainer.state.global_step == 1 and synced == [0]
    assert len(fake.requests) >= 4 and stats.policy_tokens[0] > 0  # every dialogue's first turn, and on
