"""The time plan beside the memory plan: its terms by hand, the one measured step it is calibrated on, and the
shipped colab-t4 budget — ≤ 14 GiB a stage and ≤ 60 minutes in all on a T4, as ``calirl bench memory`` prints it."""

import dataclasses

import pytest

from calirl_lite import timeplan as TP
from calirl_lite.bench import MemoryBench, bench_memory, planned_sizes
from calirl_lite.cli import build_parser, main
from calirl_lite.colab import EFFECT_BUDGETS
from calirl_lite.profiles import get_profile
from calirl_lite.stages import CalibrationConfig, TrainConfig


def test_each_term_is_the_arithmetic_its_docstring_states():
    t4 = TP.GPUS["t4"]
    assert (t4.tflops, t4.bandwidth_gbs) == (65.0, 320.0)
    one_gb = TP.Sampler(params=1e9, weights_bytes=1e9, kv_bytes_per_token=1e3, step_seconds=0.1)
    # one decode step of 8 rows whose caches hold 100 tokens: (1e9 + 1e3 · 8 · 100) bytes at 60 % of 320 GB/s, plus 0.1 s
    assert TP.decode_seconds(t4, one_gb, 8, 1, 100) == pytest.approx((1e9 + 8e5) / (320e9 * TP.BANDWIDTH_EFFICIENCY) + 0.1)
    assert TP.flop_seconds(t4, 65e12 * TP.MFU) == pytest.approx(1.0)
    step = TP.grpo_step_seconds(t4, one_gb, None, 4, 2, 10, 10, vllm=False)
    assert step["learning"] == pytest.approx(TP.flop_seconds(t4, 6 * 1e9 * 4 * (256 + 18 + 18)))  # 6 · params · tokens
    assert set(TP.grpo_step_seconds(t4, one_gb, None, 4, 2, 10, 10, vllm=True)) == {"sampling", "learning", "weight sync"}


def test_the_model_reproduces_the_measured_h100_step_on_the_plain_path():
    """Calibrated on it (the plain path's overhead per decode step), so this checks the arithmetic, within 25 %."""
    modelled = TP.measured_step_model()
    assert modelled["sampling_seconds"] == pytest.approx(TP.MEASURED_STEP["sampling_seconds"], rel=0.25)
    assert modelled["step_seconds"] == pytest.approx(TP.MEASURED_STEP["step_seconds"], rel=0.25)
    assert 114_688 / modelled["sampling_seconds"] == pytest.approx(300, rel=0.25)  # ≈ 300 tokens a second at batch 32


def test_vllm_costs_the_policys_turns_far_less_than_the_plain_path():
    t4 = TP.GPUS["t4"]
    plain, fast = (TP.sampler("Qwen/Qwen2.5-0.5B-Instruct", False, s) for s in (TP.PLAIN_STEP_SECONDS, TP.VLLM_STEP_SECONDS))
    assert TP.decode_seconds(t4, plain, 32, 256, 500) > 5 * TP.decode_seconds(t4, fast, 32, 256, 500)


def test_the_shipped_colab_t4_budget_fits_14_gib_a_stage_and_an_hour_on_a_t4(ctx):
    budget = EFFECT_BUDGETS["colab-t4"]
    assert budget.task in ("math-chat", "collabllm-math") and set(budget.methods) == {"static", "naive", "calibrated"}
    r = bench_memory(MemoryBench.make(profile="colab-t4"), ctx)
    for name, stage in r["plan"]["stages"].items():
        assert stage["peak_gib"] <= 14.0, name
    assert r["plan"]["vllm_gib"] > 0 and "vLLM engine" in r["plan"]["stages"]["training"]["parts_gib"]  # the plan needs vLLM: it says so
    time = r["time"]
    assert time["gpu"] == TP.GPUS["t4"].name and time["vllm"]
    assert time["total_minutes"] <= 60.0 < time["total_minutes_without_vllm"]
    assert time["total_minutes"] == pytest.approx(sum(s["minutes"] for s in time["stages"].values()), abs=0.1)
    assert {f"training: {m}" for m in budget.methods} <= set(time["stages"])


def test_the_budgets_commands_parse_to_the_settings_that_were_planned():
    budget = EFFECT_BUDGETS["colab-t4"]
    cal, train, _, commands = planned_sizes(MemoryBench.make(profile="colab-t4"))
    assert commands == budget.commands() and len(commands) == 1 + len(budget.methods)
    for command in commands:
        argv = command.split()[1:]
        cls = CalibrationConfig if argv[0] == "calibrate" else TrainConfig
        args = vars(build_parser(argv).parse_args(argv))  # at full size, as on the GPU (the tests run at smoke size)
        got = cls.for_mode("full", **{f.name: args[f.name] for f in dataclasses.fields(cls) if f.name in args})
        planned = cal if cls is CalibrationConfig else train
        skip = {"out_dir", "method", "adapter", "traces"}
        assert {k: v for k, v in dataclasses.asdict(got).items() if k not in skip} == {k: v for k, v in dataclasses.asdict(planned).items() if k not in skip}


def test_bench_memory_prints_both_plans_and_the_commands(capsys):
    assert main(["bench", "memory", "--profile", "colab-t4"]) == 0
    out = capsys.readouterr().out
    assert "memory plan for profile colab-t4" in out and "time plan on an NVIDIA T4" in out and "total" in out
    assert "calirl train --method calibrated" in out and "--vllm" in out
    with pytest.raises(ValueError, match="unknown GPU"):
        TP.plan_time(get_profile("colab-t4"), "k80", CalibrationConfig.make(), TrainConfig.make(), ("naive",))
