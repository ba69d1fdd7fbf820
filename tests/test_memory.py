"""The GPU memory plan, the micro-batches it chooses, and QLoRA settings that line up between calibrate and train."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from calirl_lite import memory
from calirl_lite.cli import main
from calirl_lite.memory import LAYOUTS, Layout, plan
from calirl_lite.profiles import get_profile
from calirl_lite.stages import CalibrationConfig, TrainConfig, calibration_stage, train_stage
from calirl_lite.toy_tasks import TASKS
from calirl_lite.trainer import Start, grpo_args, make_trainer
from calirl_lite.users import make_user


def test_the_layouts_have_the_published_parameter_counts():
    # the hub's counts (norms and biases, which the plan leaves out, are < 0.1 %)
    for name, published in (("Qwen/Qwen2.5-0.5B-Instruct", 494_032_768), ("Qwen/Qwen2.5-1.5B-Instruct", 1_543_714_304), ("Qwen/Qwen2.5-3B-Instruct", 3_085_938_688),
                            ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512)):
        layout = LAYOUTS[name]
        assert layout.linear_params() + layout.embedding_params() == pytest.approx(published, rel=1e-3)


def test_the_colab_t4_plan_fits_every_stage_in_14_gib_with_whole_groups():
    p = plan(get_profile("colab-t4"), 14.0)
    for name, stage in p["stages"].items():
        assert stage["peak_gib"] <= 14.0, name
        assert stage["peak_gib"] == pytest.approx(sum(stage["parts_gib"].values()), abs=0.05)
    assert p["stages"]["training"]["micro_batch"] * p["stages"]["training"]["accumulation"] == 32
    assert p["stages"]["calibration"]["micro_batch"] * p["stages"]["calibration"]["accumulation"] == 16
    small = plan(get_profile("colab-t4"), 4.0)  # a smaller budget: smaller micro-batches, never a broken group
    assert small["stages"]["calibration"]["micro_batch"] < p["stages"]["calibration"]["micro_batch"]


def test_the_gpu_profiles_default_models_are_ungated_and_planned():
    for name in ("colab-t4", "paper"):
        prof = get_profile(name)
        for model in (prof.policy_model, prof.user_model):
            assert model in LAYOUTS and not model.startswith(("google/gemma", "meta-llama/")), model  # gated families: opt in with a token
    colab = get_profile("colab-t4")
    assert colab.user_tokens == 112 and dataclasses.replace(colab, max_new_tokens=16).user_tokens == 16  # a cap, never more than a turn
    assert get_profile("tiny").user_tokens == get_profile("tiny").max_new_tokens
    assert memory.dialogue_tokens(4, 256, 112) == memory.PROMPT_TOKENS + 2 * (256 + 8) + 2 * (112 + 8)


def test_a_saved_model_folder_has_its_layout_read_from_its_config(tmp_path):
    from calirl_lite.tiny_models import build_tiny_model

    layout = Layout(64, 2, 4, 2, 16, 96, 900, True)
    folder = build_tiny_model("qwen2", tmp_path / "m", layout=layout)
    read = memory.layout_of(str(folder))
    assert (read.hidden, read.layers, read.heads, read.kv_heads, read.head_dim, read.intermediate) == (64, 2, 4, 2, 16, 96) and read.vocab >= 900
    with pytest.raises(ValueError, match="no layout known"):
        memory.layout_of("someone/unknown-model")


def test_off_a_gpu_the_whole_batch_is_one_step():
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the colab-t4 profile plans micro-batches on it")
    assert memory.micro_batches(get_profile("colab-t4"), "training", prompts_per_step=4, group_size=8) == (32, 1)
    assert memory.micro_batches(get_profile("tiny"), "calibration", calibration_batch=16) == (16, 1)


def test_grpo_samples_the_whole_group_once_and_learns_in_micro_batches(monkeypatch, ctx, tmp_path):
    """Micro-batches with gradient accumulation: one rollout of every dialogue per step, as without them."""
    from calirl_lite import trainer as TR

    monkeypatch.setattr(TR, "micro_batches", lambda *a, **k: (2, 4))
    stage = train_stage(TrainConfig.make(method="oracle", steps=1, prompts_per_step=2, group_size=4, out_dir=str(tmp_path / "run")), ctx)
    args = grpo_args(stage)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.generation_batch_size) == (2, 4, 8)
    rng = np.random.default_rng(0)
    starts = [Start(TASKS["arith-chat"].sample_goal(rng)) for _ in range(2)]
    trainer, stats = make_trainer(stage, starts, make_user("real", stage.models))
    trainer.train()
    assert len(stats.seconds) == 1 and trainer.state.global_step == 1  # one rollout of all 8 dialogues for the step's 4 micro-batches


def test_calibrate_takes_the_profiles_4bit_setting_and_train_finds_its_adapter_by_the_same_key(ctx):
    def folder(**fields):
        return calibration_stage(CalibrationConfig.make(**fields), ctx).folder

    assert CalibrationConfig.make(profile="colab-t4").load_in_4bit is True and CalibrationConfig.make().load_in_4bit is False
    assert train_stage(TrainConfig.make(profile="colab-t4", method="calibrated"), ctx).calibration.folder == folder(profile="colab-t4")
    assert folder(profile="colab-t4", load_in_4bit=False) != folder(profile="colab-t4")


def test_bench_memory_prints_the_plan_and_measures_the_stages_end_to_end(tmp_path, capsys, ctx):
    from calirl_lite.bench import MemoryBench, bench_memory

    assert main(["bench", "memory", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["plan"]["stages"]["training"]["peak_gib"] <= 14.0 and printed["measured"] == {}
    # the measuring code, on random models of a small layout (on a GPU: the profile's exact layouts, and the peaks)
    r = bench_memory(MemoryBench.make(measure=True, max_messages=2), ctx, layout=Layout(32, 2, 2, 1, 16, 64, 700, True), folder=str(tmp_path))
    assert r["measured"]["calibration"]["micro_batch"] * r["measured"]["calibration"]["accumulation"] == 16
    assert r["measured"]["training"]["lora"] and r["measured"]["training"]["tokens_sampled"] > 0
