"""Phase 1: traces, LoRA SFT of the user simulator, the gap metrics, resume and bad input."""

import json

import pytest

from calirl_lite import calibration as cal
from calirl_lite.cli import main
from calirl_lite.dialogue import Dialogue, Message, read_jsonl, write_jsonl
from calirl_lite.inputs import check_dialogues
from calirl_lite.stages import calibration_stage
from calirl_lite.tiny_models import build_tiny_model


def test_calibration_lowers_the_nll_of_held_out_real_user_turns(tmp_path, ctx, capsys):
    cfg = cal.CalibrationConfig.make(task="arith-chat", out_dir=str(tmp_path), steps=40, n_sim_dialogues=6)
    report = cal.calibrate_or_reuse(cfg, ctx, "notebook 03")  # a notebook opened alone makes what it needs, and says so
    assert "arith-chat: no calibration here yet (notebook 03 makes it): calibrating now, at smoke size" in capsys.readouterr().out
    made = (tmp_path / "gap.json").stat().st_mtime_ns
    again = cal.calibrate_or_reuse(cfg, ctx, "notebook 03")  # read back (nan rates come back as null)
    assert again["calibrated"]["nll"] == report["calibrated"]["nll"] and (tmp_path / "gap.json").stat().st_mtime_ns == made
    assert f"arith-chat: the calibration notebook 03 makes is here ({tmp_path.name}): reused" in capsys.readouterr().out
    assert report["calibrated"]["nll"] < report["naive"]["nll"]
    assert (tmp_path / "adapter" / "adapter_config.json").is_file() and (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    gap = json.loads((tmp_path / "gap.json").read_text())
    assert set(gap["naive"]["tv_to_real"]) == {"unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate", "answer_when_asked_rate",
                                               "reject_right_rate", "misstated_value_rate", "user_words", "termination_rate", "messages"}
    assert gap["calibrated"]["exact"]["total"] >= 0 and len(gap["calibrated"]["exact"]["eps"]) == len(gap["calibrated"]["exact"]["eps_error"])
    assert cal.CalibrationConfig.load(tmp_path / "config.json") == cfg
    train, held = (read_jsonl(tmp_path / n) for n in ("traces.jsonl", "heldout.jsonl"))
    assert {json.dumps(d.goal, sort_keys=True) for d in train}.isdisjoint({json.dumps(d.goal, sort_keys=True) for d in held})
    assert len(train) == cfg.n_traces and len(held) == cfg.n_heldout


def test_sft_examples_are_the_users_view_with_the_user_turn_as_completion(world):
    _, tok = world.load_model()
    d = Dialogue("arith-chat", "x", {"name": "tom", "item": "apples", "verb": 0, "start": 3, "change": 2, "answer": 5},
                 [Message("user", "tom has some apples ."), Message("assistant", "how many apples at the start ?"), Message("user", "3 apples at the start .")])
    ex = cal.user_turn_examples([d], tok, "tiny")
    assert [e["completion"] for e in ex] == ["tom has some apples .", "3 apples at the start ."]
    assert "answer : 5" in ex[1]["prompt"] and ex[1]["prompt"].endswith("<|im_start|>user\n")
    ids, mask = cal.user_view_sequence(d, tok, "tiny")
    assert tok.decode([t for t, m in zip(ids, mask) if m], skip_special_tokens=True).split() == "tom has some apples . 3 apples at the start .".split()


def test_an_interrupted_calibration_resumes_from_its_last_checkpoint(tmp_path, ctx):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise KeyboardInterrupt

    stage = calibration_stage(cal.CalibrationConfig.make(task="docedit-chat", out_dir=str(tmp_path), steps=8, save_steps=4), ctx)
    train, _ = cal.collect_stage_traces(stage)
    model, tok = cal.load_base(stage)
    with pytest.raises(KeyboardInterrupt):
        cal.train_simulator(stage, model, tok, train, callbacks=[Stop()])
    from calirl_lite.checkpoints import last_checkpoint

    assert last_checkpoint(tmp_path / "checkpoints").endswith("checkpoint-4")
    model, tok = cal.load_base(stage)
    adapter, log = cal.train_simulator(stage, model, tok, train)
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and min(h["step"] for h in log) <= 4  # the log carries on from the checkpoint
    assert (adapter / "adapter_config.json").is_file()


GOAL = {"name": "tom", "item": "apples", "verb": 0, "start": 3, "change": 2, "answer": 5}


@pytest.mark.parametrize(
    "messages, goal, message",
    [
        ([Message("user", "  "), Message("assistant", "hi")], GOAL, "empty user turn"),
        ([Message("assistant", "hi")], GOAL, "message 0 has role 'assistant'"),
        ([Message("user", "a"), Message("user", "b")], GOAL, "message 1 has role 'user'"),
        ([Message("user", "a")], {}, "non-empty object .the hidden goal"),
        ([Message("user", "a")], {"answer": 5}, r"the goal lacks field\(s\) \['name', 'item', 'verb', 'start', 'change'\]"),
    ],
)
def test_malformed_traces_are_named(messages, goal, message):
    with pytest.raises(ValueError, match="traces.jsonl:1: dialogue 7: .*" + message):
        check_dialogues([Dialogue("arith-chat", "7", goal, messages)], "traces.jsonl", "arith-chat")


def test_a_bad_trace_file_is_reported_with_its_line(tmp_path, ctx):
    cfg = cal.CalibrationConfig.make(out_dir=str(tmp_path))
    write_jsonl(tmp_path / "heldout.jsonl", [Dialogue("arith-chat", "1", {"a": 1}, [Message("user", "x")])] * 2)
    (tmp_path / "traces.jsonl").write_text('{"task": "arith-chat"}\n')
    with pytest.raises(ValueError, match=r"traces.jsonl:1: missing field"):
        cal.traces_for(cfg, ctx)


def test_too_few_traces_stop_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="n_traces must be an integer ≥ 4, got 2"):
        cal.CalibrationConfig(n_traces=2)
    with pytest.raises(ValueError, match="n_heldout must be an integer ≥ 2, got 1"):
        cal.CalibrationConfig.make(out_dir=str(tmp_path), n_heldout=1)


def test_qlora_needs_cuda_and_says_so_before_any_work(tmp_path, ctx):
    import torch

    cfg = cal.CalibrationConfig.make(out_dir=str(tmp_path / "run"), load_in_4bit=True)
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the 4-bit path is checked by test_lora_adapters_on_tiny_random_models_and_4bit_where_cuda_is")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        cal.calibrate(cfg, ctx)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family", ["qwen2", "gemma3"])
def test_lora_adapters_on_tiny_random_models_and_4bit_where_cuda_is(family, tmp_path, ctx):
    import torch

    folder = build_tiny_model(family, tmp_path / family)
    stage = calibration_stage(cal.CalibrationConfig.make(task="arith-chat", user_model=str(folder), out_dir=str(tmp_path / "run"), steps=2, batch_size=2), ctx)
    train, _ = cal.collect_stage_traces(stage)
    model, tok = cal.load_base(stage)
    adapter, _ = cal.train_simulator(stage, model, tok, train[:4])
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == stage.cfg.lora_r
    if torch.cuda.is_available():  # QLoRA: 4-bit base, LoRA on top
        import bitsandbytes as bnb

        q = calibration_stage(cal.CalibrationConfig.make(task="arith-chat", user_model=str(folder), out_dir=str(tmp_path / "q"), load_in_4bit=True), ctx)
        qmodel, _ = cal.load_base(q)
        assert any(isinstance(m, bnb.nn.Linear4bit) for m in qmodel.modules())


def test_human_turns_from_chitchat_alternate_and_start_with_the_user():
    ds = cal.chitchat_dialogues(20, seed=1)
    assert len(ds) == 20 and all(d.messages[0].role == "user" and len(d.messages) >= 2 for d in ds)
    check_dialogues(ds, "chitchat", "chitchat")
    assert cal.chitchat_dialogues(5, seed=1, offset=20)[0].task_id not in {d.task_id for d in ds}


def test_calibrate_command_prints_json(tmp_path, capsys):
    assert main(["calibrate", "--task", "docedit-chat", "--out-dir", str(tmp_path), "--n-sim-dialogues", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["naive"]["nll"] > 0 and out["calibrated"]["nll"] > 0 and "tv_to_real" in out["calibrated"]
    assert main(["calibrate", "--task", "chess"]) == 2


def test_turn_comparer_shows_the_real_turn_and_each_simulator(tmp_path, ctx):
    from calirl_lite.widgets import TurnComparer

    stage = calibration_stage(cal.CalibrationConfig.make(out_dir=str(tmp_path)), ctx)
    _, held = cal.collect_stage_traces(stage)
    comparer = TurnComparer(held, {"naive": cal.load_base(stage)}, "tiny")
    got = comparer.compare()
    k = comparer.user_turns()[comparer.turn.value]
    assert got["real"] == held[0].messages[k].text and isinstance(got["naive"], str)
    assert "naive" in comparer.view.value


def test_a_finished_calibration_run_again_is_not_trained_further(tmp_path, ctx):
    import torch
    from safetensors.torch import load_file

    stage = calibration_stage(cal.CalibrationConfig.make(task="arith-chat", out_dir=str(tmp_path), steps=4, save_steps=2), ctx)
    train, _ = cal.collect_stage_traces(stage)
    adapter, _ = cal.train_simulator(stage, *cal.load_base(stage), train)
    weights = load_file(adapter / "adapter_model.safetensors")
    for _ in range(3):
        adapter, _ = cal.train_simulator(stage, *cal.load_base(stage), train)
        now = load_file(adapter / "adapter_model.safetensors")
        assert all(torch.equal(weights[k], now[k]) for k in weights)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]  # no step past the budget


def test_the_decision_weighted_loss_weighs_a_turns_first_token_and_the_end_of_chat_marker():
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    from calirl_lite.calibration import decision_weighted_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.tensor([[-100, -100, 3, 4, 9, 5], [-100, 7, 9, 2, -100, -100]])  # 9: the marker's first token
    out = SimpleNamespace(logits=logits)
    ce = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:].clamp(min=0), reduction="none")
    scored = labels[:, 1:] != -100
    plain = decision_weighted_loss(1.0, [9])(out, labels)
    assert plain == pytest.approx(float(ce[scored].mean()), rel=1e-6)  # weight 1: the plain mean over the completion
    w = torch.ones_like(ce)
    for row, col in ((0, 1), (0, 3), (1, 0), (1, 1)):  # first scored token of each row, and every marker token
        w[row, col] = 4.0
    weighted = decision_weighted_loss(4.0, [9])(out, labels)
    assert weighted == pytest.approx(float((ce * w)[scored].sum() / w[scored].sum()), rel=1e-6) and weighted != pytest.approx(float(plain))


@pytest.mark.slow
def test_full_fine_tuning_then_the_realism_reward_saves_a_whole_simulator_that_is_measured(tmp_path, ctx):
    """--finetune full --method sft+realism: SFT of every weight, then GRPO on the discriminator's log-odds; the
    whole model (safetensors, with its tokenizer) is the calibrated simulator, and the report measures its exact gap
    and keeps its dialogues."""
    cfg = cal.CalibrationConfig.make(task="arith-chat", out_dir=str(tmp_path), finetune="full", method="sft+realism", n_sim_dialogues=4)
    report = cal.calibrate(cfg, ctx)
    sim = tmp_path / "simulator"
    assert (sim / "model.safetensors").is_file() and (sim / "tokenizer_config.json").is_file()
    assert cal.simulator_folder(tmp_path) == sim and not (tmp_path / "adapter").exists()
    log = json.loads((tmp_path / "realism_log.json").read_text())
    assert len(log["steps"]) == cfg.realism_steps and all("kl" in row for row in log["steps"]) and all("accuracy" in f for f in log["fits"])
    assert 0 <= report["calibrated"]["exact"]["total"] and report["seconds"]["simulator"] > 0
    assert len(read_jsonl(tmp_path / "simulated-calibrated.jsonl")) == 4
    model, _ = cal.load_calibrated(calibration_stage(cfg, ctx), report["adapter"])
    assert not hasattr(model, "peft_config")


@pytest.mark.parametrize("task", ["arith-chat", "docedit-chat"])
def test_validation_goals_are_neither_evaluated_on_nor_traced_for_training(task, ctx, tmp_path):
    """What calibration is chosen by (the held-out traces' validation goals) is disjoint from the goals every method is
    evaluated on (the test split) and from the goals of the training traces — in the shipped world at full size too."""
    from calirl_lite.sources import task_goals
    from tests import shared

    for c in (ctx, shared.full_ctx()):
        stage = calibration_stage(c.make(cal.CalibrationConfig, task=task, out_dir=str(tmp_path / "run")), c)
        train, validation = cal.split_goals(stage)
        traced, held = cal.world_goals(stage)
        key = lambda goals: {json.dumps(g, sort_keys=True) for g in goals}  # noqa: E731
        test = key(t["goal"] for t in task_goals(stage.task, "test", stage.world))
        assert validation and key(validation).isdisjoint(test) and key(validation).isdisjoint(key(train))
        assert key(held) <= key(validation) and key(traced).isdisjoint(key(validation))
