"""`calirl reproduce`: every stage, the table with the paper's claims checked, the gap study, reuse of finished runs."""

import json

import pytest

from calirl_lite.cli import main
from calirl_lite.gap_study import gap_trends, seed_means
from calirl_lite.reproduce import ReproduceConfig, reproduce
from calirl_lite.results import Claim, RunResult, judge, paired_difference, paper_markdown, summarise, table_markdown
from calirl_lite.shift import compounding_bound, final_reward_bound


def fake_result(method, task, seed, real, base=0.5, sim=0.6, goals=40):
    """A run whose real-user score is ``real`` on average: per goal, 1 on a ``real`` share of the goals (BLEU-like
    0/1 scores are enough for the claims' arithmetic)."""
    metric = "accuracy" if task == "arith-chat" else "bleu"
    per_goal = {"base": [float(i < round(base * goals)) for i in range(goals)], "trained": [float(i < round(real * goals)) for i in range(goals)]}
    return RunResult(method, "tiny", task, seed, metric, "x", 30, {"real": {metric: base}, "simulator": {metric: base}},
                     {"real": {metric: real}, "simulator": {metric: sim}}, f"/runs/{method}-{task}-{seed}", per_goal=per_goal)


def test_the_summary_judges_each_claim_by_its_interval_and_its_seeds_and_keeps_every_seed():
    scores = {"oracle": 0.9, "calibrated": 0.8, "static": 0.6, "naive": 0.3}  # naive below base (0.5): the docedit collapse
    results = [fake_result(m, t, s, v + 0.025 * s) for m, v in scores.items() for t in ("arith-chat", "docedit-chat") for s in (0, 1, 2)]
    summary = summarise(results, (0, 1, 2))
    doc = summary["tasks"]["docedit-chat"]
    assert doc["methods"]["naive"]["per_seed"] == pytest.approx({"0": 0.3, "1": 0.325, "2": 0.35})
    assert doc["methods"]["naive"]["mean"] == pytest.approx(0.325) and doc["methods"]["naive"]["std"] == pytest.approx(0.0204, abs=1e-4)
    assert all(c["holds"] and c["seeds_agree"] == 3 for t in summary["tasks"].values() for c in t["claims"])
    assert "naive < base" in [c["claim"] for c in doc["claims"]] and "naive < base" not in [c["claim"] for c in summary["tasks"]["arith-chat"]["claims"]]
    # a world where static beats calibrated: that claim is reported as not shown, in the table too
    results = [r if r.method != "static" else fake_result("static", r.task, r.seed, 0.95) for r in results]
    summary = summarise(results, (0, 1, 2))
    failing = [c["claim"] for c in summary["tasks"]["arith-chat"]["claims"] if not c["holds"]]
    assert failing == ["oracle > static", "calibrated > static"]
    assert "| arith-chat | calibrated > static | -0.125 [" in table_markdown(summary) and "| 0 of 3 | **not shown** |" in table_markdown(summary)


def test_a_claim_carried_by_two_seeds_against_a_third_is_not_shown_by_the_nested_interval():
    """Calibrated at 0.9, 0.9 and 0.3 against Static's 0.6: 2 of 3 seeds agree and every goal's mean difference is ≥ 0,
    so the goal-only interval clears 0 — but training again draws the third seed's collapse often enough (two copies
    of it in 7 of 27 draws) that the nested interval does not, and the claim is not shown."""
    results = [fake_result(m, "arith-chat", s, v, goals=200) for m, vs in {"calibrated": (0.9, 0.9, 0.3), "static": (0.6, 0.6, 0.6),
                                                                          "oracle": (0.9, 0.9, 0.9)}.items() for s, v in enumerate(vs)]
    claims = {c["claim"]: c for c in summarise(results, (0, 1, 2))["tasks"]["arith-chat"]["claims"]}
    c = claims["calibrated > static"]
    assert c["seeds_agree"] == 2 and c["goal_only"]["low"] > 0 and c["low"] < 0 and c["p_one_sided"] > 0.15 and not c["holds"]
    assert claims["oracle > static"]["holds"] and claims["oracle > static"]["p_holm"] <= 0.05  # every seed and goal agree


def test_holm_adjusted_p_values_step_down_and_never_decrease():
    from calirl_lite.results import holm_adjusted

    assert holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm_adjusted({"a": 0.4, "b": 0.5}) == pytest.approx({"a": 0.8, "b": 0.8})  # capped by the one before, at most 1


def _claim(left_per_seed, right=0.5, goals=200):
    """A claim `a > b` whose sides score, per seed, 1 on a share of the goals (b: ``right``)."""
    a = {s: [float(i < round(v * goals)) for i in range(goals)] for s, v in enumerate(left_per_seed)}
    b = {s: [float(i < round(right * goals)) for i in range(goals)] for s in a}
    return judge(Claim("a", ">", "b"), paired_difference(a, b))


def test_a_claim_holds_only_with_an_interval_clear_of_zero_and_two_seeds_of_three():
    assert _claim([0.7, 0.7, 0.7])["holds"]  # +0.2 in every seed
    one_seed = _claim([0.5, 0.5, 0.95])  # the mean difference (+0.15) rests on one seed's collapse
    assert one_seed["low"] > 0 and one_seed["seeds_agree"] == 1 and not one_seed["holds"]
    a, b = [1.0] * 3 + [0.0] * 97, [0.0] * 3 + [1.0] * 2 + [0.0] * 95  # a wins on 3 goals, loses on 2: +0.01 in every seed
    tiny = judge(Claim("a", ">", "b"), paired_difference({s: a for s in range(3)}, {s: b for s in range(3)}))
    assert tiny["seeds_agree"] == 3 and tiny["low"] < 0 < tiny["high"] and not tiny["holds"]  # but the interval spans 0
    assert not _claim([0.3, 0.3, 0.3])["holds"]  # the wrong way
    assert judge(Claim("a", "<", "b"), paired_difference({0: [0.0] * 9, 1: [0.0] * 9}, {0: [1.0] * 9, 1: [1.0] * 9}))["holds"]
    with pytest.raises(ValueError, match="same goals"):
        paired_difference({0: [1.0, 0.0]}, {0: [1.0]})


def test_the_paper_sits_beside_the_toy_with_every_ordering_of_its_rows():
    scores = {"oracle": 0.9, "calibrated": 0.8, "static": 0.6, "naive": 0.3}
    results = [fake_result(m, t, s, v) for m, v in scores.items() for t in ("arith-chat", "docedit-chat") for s in (0, 1, 2)]
    summary = summarise(results, (0, 1, 2))
    assert len(summary["tasks"]["arith-chat"]["paper_orderings"]) == 10 and len(summary["tasks"]["docedit-chat"]["paper_orderings"]) == 6
    md = paper_markdown(summary)
    assert "| Calibrated Interactive RL | 91.5 | 80.0 | 34.6 | 80.0 |" in md
    assert "| MATH-Chat | naive > static (89.3 vs 85.0) |" in md and "| 0 of 3 | reversed |" in md  # the toy's naive is below its static
    assert "| MATH-Chat | calibrated > oracle (91.5 vs 89.7) |" in md


def _gap_rows(drop):
    rows = []
    for seed in (0, 1, 2):
        for w in (0.0, 0.5, 1.0):
            for h in (2, 4, 8):
                eps_t = [w / 4] * ((h + 1) // 2)
                rows.append({"task": "t", "simulator": f"w{w:g}", "w": w, "horizon": h, "seed": seed, "metric": "accuracy", "eps": sum(eps_t),
                             "eps_t": eps_t, "eps_error": 0.01, "drop": drop(w, h, seed), "drop_error": 0.02, "by_construction": w == 0 or h <= 2,
                             "by_category": {"accepts a wrong answer": sum(eps_t)}, "proxy_eps": w / 8,
                             "bound_final": final_reward_bound(eps_t), "bound_final_high": min(1.0, sum(eps_t) + 0.01), "bound_per_turn": compounding_bound(eps_t)})
    return rows


def test_gap_trends_leave_out_pairs_equal_by_construction_count_per_seed_and_check_both_bounds():
    rows = _gap_rows(lambda w, h, seed: 0.0 if w == 0 or h == 2 else w * h / 40)
    t = gap_trends(rows)["t"]
    # without w = 0 and H = 2 only w ∈ {0.5, 1} × H ∈ {4, 8} remain: 2 pairs across the gap, 2 across the horizon
    assert (t["drop_rises_with_gap"], t["drop_rises_with_horizon"]) == ("2/2", "2/2") and t["per_seed_gap"] == ["2/2"] * 3
    assert t["under_final_bound"] and t["under_per_turn_bound"]
    rows = _gap_rows(lambda w, h, seed: 0.0 if w == 0 or h == 2 else (0.12 if (seed, w, h) == (2, 0.5, 4) else w * h / 40))
    t = gap_trends(rows)["t"]
    assert t["per_seed_gap"] == ["2/2", "2/2", "1/2"] and t["drop_rises_with_gap"] == "2/2"  # one seed disagrees; the means still rise
    means = {(p["w"], p["horizon"]): p for p in seed_means(rows)}
    assert means[(0.5, 4)]["drop_low"] == pytest.approx(0.05) and means[(0.5, 4)]["drop_high"] == 0.12 and means[(0.5, 4)]["seeds"] == 3
    assert t["rows_above"] == 0 and t["above"] == []
    next(r for r in rows if (r["seed"], r["w"], r["horizon"]) == (1, 0.5, 8))["drop"] = 0.7  # above Σ ε = 0.5, under Σ (H − t) ε = 1.25
    t = gap_trends(rows)["t"]
    assert not t["under_final_bound"] and t["under_per_turn_bound"] and t["rows_above"] == 1
    for r in rows:  # every seed of that point lies above: the mean does, and by more than the noise
        if (r["w"], r["horizon"]) == (0.5, 8):
            r["drop"] = 0.7
    (above,) = gap_trends(rows)["t"]["above"]
    assert (above["simulator"], above["horizon"], above["beyond_noise"]) == ("w0.5", 8, True)
    means = {(p["w"], p["horizon"]): p for p in seed_means(rows)}
    assert means[(0.5, 8)]["eps_error"] == pytest.approx(0.01 / 3 ** 0.5) and means[(0.5, 8)]["drop_error"] == pytest.approx(0.02 / 3 ** 0.5)
    # one seed's dialogues all ended a turn sooner: its ε_t is 0 past them, and the seeds still average turn by turn
    shorter = next(r for r in rows if (r["seed"], r["w"], r["horizon"]) == (0, 1.0, 8))
    shorter["eps_t"] = shorter["eps_t"][:-1]
    means = {(p["w"], p["horizon"]): p for p in seed_means(rows)}
    assert means[(1.0, 8)]["eps_t"] == pytest.approx([0.25, 0.25, 0.25, 0.25 * 2 / 3])


@pytest.mark.slow
def test_reproduce_runs_every_stage_writes_the_table_and_reuses_finished_runs(ctx):
    from tests import shared

    summary, out = shared.reproduced(), ctx.results / "reproduce"  # the session's training runs, made first: all reused
    cfg = ReproduceConfig.make(workers=1)  # smoke mode: one seed, tiny runs
    table = json.loads((out / "table.json").read_text())
    assert table["seeds"] == [0] and table["seconds"] > 0 and table["workers"] == 1 and table["reused_runs"] == 8
    for task in ("arith-chat", "docedit-chat"):
        methods = table["tasks"][task]["methods"]
        assert set(methods) == {"base", "static", "naive", "calibrated", "oracle"}
        assert all(set(m["per_seed"]) == {"0"} and 0.0 <= m["mean"] <= 1.0 for m in methods.values())
        assert len(table["tasks"][task]["claims"]) == (5 if task == "docedit-chat" else 4)
    assert {r.run for r in shared.method_runs("arith-chat").values()} <= set(table["runs"].values())
    md = (out / "table.md").read_text()
    assert "| Calibrated Interactive RL |" in md and "naive < base" in md and "calirl reproduce` took" in md
    for name in ("table.png", "gap_vs_drop.png", "gap_vs_drop.json"):
        assert (out / name).stat().st_size > 0
    gap = json.loads((out / "gap_vs_drop.json").read_text())
    sims = [f"w{w:g}" for w in cfg.gap_mixes] + ["naive", "calibrated"]
    assert {(r["simulator"], r["horizon"], r["seed"]) for r in gap["rows"] if r["task"] == "arith-chat"} == {
        (s, h, seed) for s in sims for h in cfg.gap_horizons for seed in cfg.gap_seeds}
    assert all(r["drop"] == pytest.approx(abs(r["sim"] - r["real"])) for r in gap["rows"])
    assert all(r["eps"] == 0 and r["drop"] == 0 and r["by_construction"] for r in gap["rows"] if r["w"] == 0)  # w = 0 is the real users themselves
    assert all(len(r["eps_t"]) <= (r["horizon"] + 1) // 2 and r["bound_final"] == pytest.approx(min(1.0, r["eps"])) for r in gap["rows"])
    assert all(r["eps"] > 0 for r in gap["rows"] if r["simulator"] == "naive")  # the prompted LM writes what no real user does
    assert all(r["drop"] == 0 for r in gap["rows"] if r["w"] is not None and r["horizon"] == 2)  # a graded user opens as the real ones do
    assert {p["method"] for p in gap["trained"]} == {"static", "naive", "calibrated"} and len(gap["points"]) == len(gap["rows"]) // len(cfg.gap_seeds)
    assert "| MATH-Chat | naive > static (89.3 vs 85.0) |" in (out / "paper.md").read_text()
    again = reproduce(cfg, ctx, out=out)  # every stage finished: nothing is computed again, the numbers are the same
    assert again["tasks"] == summary["tasks"] and again["runs"] == summary["runs"] and again["reused_runs"] == 8
    assert "8 of 8 training runs had finished before and were reused" in (out / "table.md").read_text()


def test_the_pool_starts_each_job_once_what_it_waits_for_has_finished(tmp_path):
    from calirl_lite.pool import Job, run_pool
    from tests.shared import stamp

    log = tmp_path / "log"
    jobs = [Job("late", stamp, (log, "late"), ("first",)), Job("first", stamp, (log, "first", 1.0)), Job("free", stamp, (log, "free"))]
    for workers in (1, 2):  # in this process, and in two spawned workers: "late" waits for "first" although listed before it
        log.write_text("")
        done = run_pool(jobs, workers, "order")
        order = log.read_text().split()
        assert order.index("first") < order.index("late") and set(order) == {"first", "late", "free"} and done["late"] == "late"
    with pytest.raises(ValueError, match="wait for jobs that are not in the pool: nowhere"):
        run_pool([Job("a", stamp, (log, "a"), ("nowhere",))], 1, "order")
    with pytest.raises(ValueError, match="wait in a circle and never start: a, b"):
        run_pool([Job("a", stamp, (log, "a"), ("b",)), Job("b", stamp, (log, "b"), ("a",))], 1, "order")


def test_reproduce_refuses_bad_settings_before_any_work(capsys):
    assert main(["reproduce", "--profile", "smol"]) == 2
    assert "toy world of the 'tiny' profile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "--gap-mixes", "0", "1.5"])
    assert "argument --gap-mixes: must be a number from 0 to 1, got 1.5" in capsys.readouterr().err


def test_a_failed_run_in_a_worker_process_stops_the_stage_with_its_name(ctx, tmp_path):
    from calirl_lite.pool import run_pool
    from calirl_lite.stages import TrainConfig
    from calirl_lite.train import train_job

    missing = TrainConfig.make(method="calibrated", adapter=str(tmp_path / "nowhere"))  # valid settings whose input is missing
    jobs = [("calibrated · arith-chat · seed 0", train_job, (missing, ctx))]
    for workers in (1, 2):  # in this process, and in spawned single-threaded workers
        with pytest.raises(FileNotFoundError, match=r"train: calibrated · arith-chat · seed 0 failed: method 'calibrated' needs the calibrated simulator"):
            run_pool(jobs, workers, "train")


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads worker processes from /proc")
def test_workers_leave_when_the_reproduce_process_is_killed():
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = "import time; from calirl_lite.pool import run_pool; run_pool([('a', time.sleep, (120,)), ('b', time.sleep, (120,))], 2, 'sleep')"
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent.pid:  # the parent pid, after the "(name)" field
                pids.append(int(stat.parent.name))
        return pids

    def cmdline(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it has just ended
            return b""

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    try:
        deadline = time.time() + 60
        while len(workers := [p for p in children() if b"spawn_main" in cmdline(p)]) < 2:
            assert time.time() < deadline, "the two workers did not start"
            time.sleep(0.2)
    finally:
        parent.send_signal(signal.SIGKILL)  # no clean-up of its own: the workers must notice
        parent.wait()
    deadline = time.time() + 15
    while any(running(p) for p in workers):
        assert time.time() < deadline, f"workers {workers} still run after their parent was killed"
        time.sleep(0.2)


def test_the_robustness_study_runs_every_variant_in_its_own_world_and_folder_and_tabulates_the_verdicts(tmp_path, monkeypatch, ctx):
    from calirl_lite import reproduce as R

    seen = []

    def fake(cfg, where, out=None):
        seen.append((cfg.seeds, cfg.calibration_seed, cfg.steps, cfg.gap_study, where.world.seed, out.name))
        holds = cfg.steps != 60  # pretend twice the budget loses a claim
        claim = {"claim": "oracle > static", "judged": True, "holds": holds, "mean": 0.1 if holds else -0.01, "seeds_agree": 3 if holds else 1, "seeds": 3}
        return {"tasks": {"arith-chat": {"claims": [claim]}}}

    monkeypatch.setattr(R, "reproduce", fake)
    result = R.robustness(ReproduceConfig.make(), ctx, out=tmp_path)
    assert seen == [((3, 4, 5), 0, 0, False, 0, "seeds-3-5"), ((0,), 0, 0, False, 1, "world-seed-1"),
                    ((0,), 1, 0, False, 0, "calibration-seed-1"), ((0,), 0, 60, False, 0, "twice-the-budget")]
    md = (tmp_path / "summary.md").read_text()
    assert "| arith-chat | oracle > static | holds (+0.100, 3/3) | holds (+0.100, 3/3) | holds (+0.100, 3/3) | **not shown** (-0.010, 1/3) |" in md
    assert set(result["variants"]) == set(R.VARIANTS)


def test_the_reasons_written_into_paper_md_carry_no_numbers_of_their_own():
    """Numbers in a generated file come from the run that writes it: a reason is prose, so it cannot go stale."""
    import re

    from calirl_lite.results import REASONS

    assert REASONS and all(not re.search(r"\d", text) for text in REASONS.values()), [t for t in REASONS.values() if re.search(r"\d", t)]
