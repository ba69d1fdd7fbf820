"""GRPO training (``calirl train``): one code path for static, naive, calibrated and oracle; checks before compute; resume; reproducibility."""

import json

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from calirl_lite import stages as S
from calirl_lite import train as T
from calirl_lite import trainer as TR
from calirl_lite.cli import main
from calirl_lite.dialogue import Dialogue, Message
from calirl_lite.results import RunResult, summarise, table_markdown
from calirl_lite.rollout import base_policy, rollout
from calirl_lite.settings import short_hash
from calirl_lite.tasks import get_task
from calirl_lite.users import ScriptedUsers

ARITH = get_task("arith-chat")


def goals(world, task="arith-chat", split="train", n=4):
    return [t["goal"] for t in world.tasks(task, split)][:n]


def test_a_rollout_from_logged_contexts_trains_only_the_first_policy_turn(ctx, world):
    goal = goals(world, n=1)[0]
    context = [Message("user", "tom has some apples . then tom buys some apples . how many apples does tom have now ?"),
               Message("assistant", "how many apples at the start ?"), Message("user", f"{goal['start']} apples at the start .")]
    policy = base_policy(S.resolve(ctx, "tiny", "arith-chat").models, max_new_tokens=8)
    batch = rollout(policy, ScriptedUsers(), ARITH, [goal, goal], max_messages=9, seed=3, contexts=[context, context], learn_turns=1)
    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for d, ids, mask in zip(batch.dialogues, batch.completion_ids, batch.env_mask):
        assert [m.text for m in d.messages[:3]] == [m.text for m in context]
        first_turn = ids.index(end) + 1
        assert all(mask[:first_turn - 1]) and not any(mask[first_turn:])  # only the turn written at the context learns
        assert len(d.messages) > 4 or d.terminated  # the dialogue was completed by the user and the policy
        if len(d.messages) > 5:  # the policy wrote more than the trained turn: every turn counts in its token count
            assert d.scores["assistant_tokens"] > sum(mask)
    # the scripted user remembers what it said in the logged context
    state = ScriptedUsers().open(get_task("arith-chat"), goal, np.random.default_rng(0))
    ScriptedUsers().resume(state, context)
    assert state.scripted.told == {"start": goal["start"]}
    with pytest.raises(ValueError, match="starting and ending with the user"):
        rollout(policy, ScriptedUsers(), ARITH, [goal], contexts=[context[:2]])


def test_static_at_every_turn_trains_every_turn_the_policy_writes_after_the_logged_context(ctx, calibrated, tmp_path):
    """The ablation's Static: the same dialogues (the mask does not change what is sampled), every policy token trained."""
    masks, dialogues = {}, {}
    for turns in ("first", "all"):
        stage = S.train_stage(T.TrainConfig.make(method="static", static_turns=turns, out_dir=str(tmp_path / turns)), ctx)
        inputs = T.check_inputs(stage)
        trainer, stats = TR.make_trainer(stage, TR.training_starts(stage, inputs.logged), TR.training_user(stage, inputs.adapter))
        out = trainer.rollout_func([str(i) for i in range(8)], trainer)
        masks[turns], dialogues[turns] = out["env_mask"], out["completion_ids"]
        assert stats.policy_tokens[-1] == sum(map(sum, out["env_mask"]))
    assert dialogues["first"] == dialogues["all"]
    assert all(sum(a) >= sum(f) for a, f in zip(masks["all"], masks["first"]))
    assert sum(map(sum, masks["all"])) > sum(map(sum, masks["first"]))  # some dialogue had a second policy turn
    with pytest.raises(ValueError, match="static_turns applies to method static only"):
        T.TrainConfig.make(method="oracle", static_turns="all")


def test_a_setting_added_later_keeps_the_folders_of_runs_made_before_it_at_its_default():
    first, every = (T.TrainConfig.make(method="static", static_turns=t) for t in ("first", "all"))
    assert "static_turns" not in first.identity() and every.identity()["static_turns"] == "all"
    assert first.digest() != every.digest()
    before = {k: v for k, v in first.to_dict().items() if k not in T.TrainConfig.LATER}  # the settings before the fields existed
    assert first.digest() == short_hash(before) and set(T.TrainConfig.LATER) == {"static_turns", "real_user", "vllm", "vllm_memory"}


def test_static_contexts_are_every_point_where_the_assistant_spoke_next(world):
    d = Dialogue("arith-chat", "x", goals(world, n=1)[0], [Message("user", "a"), Message("assistant", "b"), Message("user", "c"), Message("assistant", "d")])
    starts = TR.static_contexts([d], max_messages=14)
    assert [len(s.context) for s in starts] == [1, 3]
    assert TR.static_contexts([d], max_messages=2)[0].context == d.messages[:1]


def test_reward_is_the_final_task_score_minus_the_token_penalty():
    ds = [Dialogue("arith-chat", str(i), {}, [], scores={"accuracy": a, "assistant_tokens": n}) for i, (a, n) in enumerate([(1.0, 10), (0.0, 4)])]
    assert TR.task_reward("accuracy", 0.0)([None, None], ds) == [1.0, 0.0]
    assert TR.task_reward("accuracy", 0.01, "task-efficiency")([None, None], ds) == pytest.approx([0.9, -0.04])
    assert TR.task_reward("accuracy", 0.01, "task")([None, None], ds) == [1.0, 0.0]  # the penalty is task-efficiency's alone


@pytest.mark.parametrize("kwargs, error, message", [
    ({"method": "sarsa"}, ValueError, "unknown method 'sarsa'; methods: static, naive, calibrated, oracle"),
    ({"task": "chitchat"}, ValueError, "no reward to train on"),
    ({"profile": "laptop"}, ValueError, "unknown profile"),
    ({"group_size": 1}, ValueError, "group_size must be an integer ≥ 2, got 1"),
])
def test_bad_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        T.TrainConfig.make(**kwargs)


def test_missing_or_mismatched_inputs_stop_before_any_compute(tmp_path, monkeypatch, ctx, calibrated):
    import calirl_lite.profiles
    import calirl_lite.world

    def no_compute(*a, **k):
        raise AssertionError("a model or world was loaded before the inputs were checked")

    monkeypatch.setattr(calirl_lite.profiles, "load_model", no_compute)
    monkeypatch.setattr(calirl_lite.world, "pretrain", no_compute)
    with pytest.raises(FileNotFoundError, match=r"no calibrated simulator at .*nowhere.*calirl calibrate --profile tiny --task arith-chat --seed 0"):
        T.train(T.TrainConfig.make(method="calibrated", adapter=str(tmp_path / "nowhere"), out_dir=str(tmp_path / "run")), ctx)
    with pytest.raises(FileNotFoundError, match="Static Context needs logged dialogues"):
        T.train(T.TrainConfig.make(method="static", traces=str(tmp_path / "none.jsonl"), out_dir=str(tmp_path / "run")), ctx)
    with pytest.raises(ValueError, match="calibrated for task 'arith-chat', not 'docedit-chat'"):
        adapter = calibrated["arith-chat"].folder / "adapter"
        T.train(T.TrainConfig.make(method="calibrated", task="docedit-chat", adapter=str(adapter), out_dir=str(tmp_path / "run")), ctx)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="meant for a CUDA GPU"):
            T.train(T.TrainConfig.make(method="oracle", profile="colab-t4", out_dir=str(tmp_path / "run")), ctx)
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_names_a_bad_method_and_exits_2(capsys):
    assert main(["train", "--method", "ppo"]) == 2
    assert "calirl train: error: unknown method 'ppo'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("method", ["static", "naive", "calibrated", "oracle"])
def test_every_method_trains_through_the_same_trainer_and_writes_its_run(method, ctx, method_runs):
    r = method_runs[method]
    run = S.train_stage(T.TrainConfig.make(method=method), ctx).folder
    assert r.steps == T.TrainConfig.make().steps and r.simulator == S.SIMULATOR[method] and r.run == str(run)
    for name in ("config.json", "log.json", "eval.json", "eval_dialogues.jsonl", "rewards.png", "policy/model.safetensors"):
        assert (run / name).is_file(), name
    log = json.loads((run / "log.json").read_text())
    assert sum("reward" in h for h in log) == r.steps  # one reward per step: the curve
    for who in ("simulator", "real"):
        assert set(r.trained[who]) >= {"accuracy", "assistant_tokens", "turns"}
    assert r.policy_tokens > 0
    assert T.train(T.TrainConfig.make(method=method), ctx) == r  # a finished run is reused, not retrained


@pytest.mark.slow
def test_every_method_is_judged_against_the_same_base_users_goals_and_seeds(ctx, calibrated, method_runs):
    """The experiment's machinery: one Base for every method, the same real users, goals and evaluation seed for
    every method, and Static's contexts cut from the real users' logged dialogues."""
    from calirl_lite.dialogue import read_jsonl

    runs = method_runs
    assert len({json.dumps(r.base["real"], sort_keys=True) for r in runs.values()}) == 1
    assert len({tuple(r.per_goal["base"]) for r in runs.values()}) == 1 and all(len(r.per_goal["trained"]) == T.TrainConfig.make().n_eval for r in runs.values())
    evaluated = {m: [d for d in read_jsonl(r.folder / "eval_dialogues.jsonl") if d.user == "real"] for m, r in runs.items()}
    firsts = {m: [(d.task_id, json.dumps(d.goal, sort_keys=True), d.messages[0].text) for d in ds] for m, ds in evaluated.items()}
    assert all(f == firsts["oracle"] for f in firsts.values())  # same goals, same ids (seed), the same opening by the same real users
    assert [d.scores["accuracy"] for d in evaluated["naive"]] == runs["naive"].per_goal["trained"]
    traces = read_jsonl(calibrated["arith-chat"].folder / "traces.jsonl")
    assert {d.user for d in traces} == {"real"}
    stage = S.train_stage(T.TrainConfig.make(method="static"), ctx)
    starts = TR.training_starts(stage, T.check_inputs(stage).logged)
    logged = {json.dumps([(m.role, m.text) for m in d.messages]) for d in traces}
    assert starts and all(any(h.startswith(json.dumps([(m.role, m.text) for m in s.context])[:-1]) for h in logged) for s in starts)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_trained_policy_and_scores(tmp_path, ctx, world):
    # the smoke world's LM rarely scores; a token penalty makes rewards differ within every group, so each step moves the weights
    runs = {k: T.TrainConfig.make(method="oracle", reward="task-efficiency", token_penalty=0.01, seed=seed, out_dir=str(tmp_path / k)) for k, seed in (("a", 1), ("b", 1), ("c", 2))}
    results = {k: T.train(cfg, ctx, progress=False) for k, cfg in runs.items()}
    assert results["a"].trained == results["b"].trained
    from safetensors.torch import load_file

    a, b, c = (load_file(tmp_path / k / "policy" / "model.safetensors") for k in "abc")
    base = world.load_model()[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], base[k]) for k in a)  # training moved the weights …
    assert any(not torch.equal(a[k], c[k]) for k in a)  # … and the seed matters


def test_an_interrupted_training_resumes_from_its_last_checkpoint(tmp_path, ctx):
    cfg = T.TrainConfig.make(method="oracle", steps=4, save_steps=2, out_dir=str(tmp_path / "run"))

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, ctx, callbacks=[Stop()], progress=False)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir() and not (tmp_path / "run" / "eval.json").exists()
    r = T.train(cfg, ctx, progress=False)
    assert r.resumed_from.endswith("checkpoint-2") and r.steps == 4
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [h["step"] for h in log if "reward" in h][-2:] == [3, 4]


def test_bench_train_prints_its_figures_as_json(capsys, ctx):
    assert main(["bench", "train", "--steps", "2", "--prompts-per-step", "2", "--group-size", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for name, budget in (("single_turn", 2), ("multi_turn", ctx.world.max_messages)):
        assert r[name]["max_messages"] == budget
        assert r[name]["steps_per_s"] > 0 and r[name]["policy_tok_s"] > 0 and 0 < r[name]["rollout_share"] < 1
    assert r["single_turn"]["policy_tokens_per_dialogue"] < r["multi_turn"]["policy_tokens_per_dialogue"]


def test_a_dialogue_the_user_ended_at_once_gives_trl_one_masked_end_token():
    from calirl_lite.rollout import RolloutBatch

    d = Dialogue("arith-chat", "x", {}, [Message("user", "bye [[TERMINATE CHAT]]")])
    out = RolloutBatch([d, d], prompt_ids=[[1], [1]], completion_ids=[[], [5, 7]], logprobs=[[], [-1.0, -2.0]], env_mask=[[], [1, 1]], end_id=7).as_trl()
    assert out["completion_ids"] == [[7], [5, 7]] and out["env_mask"] == [[0], [1, 1]] and out["logprobs"] == [[0.0], [-1.0, -2.0]]


def test_sim_vs_real_plot_puts_base_first_and_one_pair_per_method(tmp_path):
    from calirl_lite import plots

    def row(method, seed, sim, real):
        return RunResult(method, "tiny", "arith-chat", seed, "accuracy", method, 30, {"real": {"accuracy": 0.5}},
                         {"simulator": {"accuracy": sim}, "real": {"accuracy": real}}, "")

    rows = [row("naive", s, 0.9, 0.2) for s in (0, 1)] + [row("oracle", s, 0.7, 0.7) for s in (0, 1)]
    fig = plots.plot_sim_vs_real(rows, path=tmp_path / "f.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "naive", "oracle"]
    assert sorted(round(b.get_height(), 3) for b in ax.patches) == [0.2, 0.5, 0.7, 0.7, 0.9]
    assert (tmp_path / "f.png").is_file()
    assert plots.reward_points([{"step": 1, "reward": 0.5}, {"step": 1, "loss": 0.1}, {"step": 2, "reward": 0.7}]) == ([1, 2], [0.5, 0.7])


def test_the_table_gives_mean_std_and_seeds_with_the_real_users_and_what_the_training_user_said():
    def row(seed, after):
        return RunResult("naive", "tiny", "arith-chat", seed, "accuracy", "naive", 30, {"simulator": {"accuracy": 0.4}, "real": {"accuracy": 0.5}},
                         {"simulator": {"accuracy": after}, "real": {"accuracy": 0.25 * (seed + 1)}}, "")

    table = table_markdown(summarise([row(1, 0.4), row(0, 0.6)], seeds=[0, 1]))
    assert "| Naive Interactive RL | 0.375 ± 0.125 [0.250, 0.500] · *0.500* |" in table
    assert "| Base | 0.500 ± 0.000 [0.500, 0.500] |" in table


def test_lora_finetuning_saves_an_adapter_and_leaves_the_base_weights_alone(tmp_path, ctx):
    r = T.train(T.TrainConfig.make(method="oracle", finetune="lora", lora_r=4, reward="task-efficiency", token_penalty=0.01, out_dir=str(tmp_path / "run")), ctx,
                progress=False)
    assert (tmp_path / "run" / "policy" / "adapter_config.json").is_file() and not (tmp_path / "run" / "policy" / "model.safetensors").exists()
    from safetensors.torch import load_file

    adapter = load_file(tmp_path / "run" / "policy" / "adapter_model.safetensors")
    assert any("lora_B" in k and adapter[k].abs().sum() > 0 for k in adapter)  # the adapter was trained
    assert r.steps == T.TrainConfig.make().steps


class StopAtTheEnd(TrainerCallback):
    """Stops a run after its last checkpoint was written, before its policy and scores are."""

    def on_train_end(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_a_run_stopped_after_its_last_checkpoint_is_finished_not_trained_further(tmp_path, monkeypatch, ctx):
    from safetensors.torch import load_file

    import calirl_lite.train as lifecycle
    from calirl_lite.checkpoints import last_checkpoint

    def settings(name):
        return T.TrainConfig.make(method="oracle", steps=4, save_steps=2, out_dir=str(tmp_path / name))

    first = T.train(settings("straight"), ctx, progress=False)
    weights = load_file(tmp_path / "straight" / "policy" / "model.safetensors")
    assert not (tmp_path / "straight" / "checkpoints").exists()  # a finished run keeps no optimiser state

    with pytest.raises(KeyboardInterrupt):  # stopped after its last checkpoint was written …
        T.train(settings("stopped"), ctx, callbacks=[StopAtTheEnd()], progress=False)
    assert last_checkpoint(tmp_path / "stopped" / "checkpoints").endswith("checkpoint-4")
    evaluate_policy = lifecycle.evaluate_policy

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "evaluate_policy", stop)
    for _ in range(2):  # … then twice during the final evaluation
        with pytest.raises(KeyboardInterrupt):
            T.train(settings("stopped"), ctx, progress=False)
    monkeypatch.setattr(lifecycle, "evaluate_policy", evaluate_policy)
    again = T.train(settings("stopped"), ctx, progress=False)
    assert again.steps == 4 and again.resumed_from.endswith("checkpoint-4") and again.trained == first.trained
    now = load_file(tmp_path / "stopped" / "policy" / "model.safetensors")
    assert all(torch.equal(weights[k], now[k]) for k in weights)


@pytest.mark.slow
def test_a_torn_checkpoint_is_skipped_for_the_one_before_it(tmp_path, ctx):
    from safetensors.torch import load_file

    def settings(name):
        return T.TrainConfig.make(method="oracle", steps=4, save_steps=2, out_dir=str(tmp_path / name))

    first = T.train(settings("straight"), ctx, progress=False)
    weights = load_file(tmp_path / "straight" / "policy" / "model.safetensors")
    with pytest.raises(KeyboardInterrupt):
        T.train(settings("torn"), ctx, callbacks=[StopAtTheEnd()], progress=False)
    state = tmp_path / "torn" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    state.write_text(state.read_text()[:200])  # killed while transformers wrote it in place
    with pytest.warns(UserWarning, match="checkpoint-4"):
        again = T.train(settings("torn"), ctx, progress=False)
    assert again.resumed_from.endswith("checkpoint-2") and again.steps == 4
    now = load_file(tmp_path / "torn" / "policy" / "model.safetensors")
    assert all(torch.equal(weights[k], now[k]) for k in weights) and again.trained == first.trained


def test_a_nan_setting_is_named_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--method", "oracle", "--learning-rate", "nan", "--out-dir", str(tmp_path / "run")])
    assert "argument --learning-rate: must be a number ≥ 0, got nan" in capsys.readouterr().err and not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="kl_beta"):
        T.TrainConfig.make(kl_beta=float("inf"))


@pytest.mark.parametrize("command", [["shift", "--out"], ["world", "build", "--cache-dir"], ["calibrate", "--out-dir"],
                                     ["train", "--method", "oracle", "--out-dir"], ["reproduce", "--out"], ["notebooks", "--out"]])
def test_a_path_through_a_file_is_a_one_line_error(tmp_path, capsys, monkeypatch, command):
    import os

    before = dict(os.environ)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main([*command, str(blocker / "x")]) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and "folder" in err and len(err.strip().splitlines()) == 1
    assert dict(os.environ) == before  # a command hands its kernels their settings; it changes no one's environment


@pytest.mark.slow
def test_oracle_training_raises_the_real_users_score_on_held_out_goals(full_ctx):
    """The one learning test, in the world shipped with the kit at full size: against the real users, 30 GRPO steps
    lift the real users' BLEU on held-out goals by a margin a broken reward, loss, mask or evaluation would not reach
    (docs/results.md: 0.54 → 0.83 over 200 goals and three seeds)."""
    r = T.train(T.TrainConfig(method="oracle", task="docedit-chat", n_eval=60, n_eval_simulator=8, save_steps=30), full_ctx, progress=False)
    print(f"learning test: BLEU with the real users {r.score('real', 'base'):.3f} (base) → {r.score('real'):.3f} (oracle)")
    assert r.steps == 30 and r.score("real") >= r.score("real", "base") + 0.1, (r.score("real", "base"), r.score("real"))
