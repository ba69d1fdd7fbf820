"""The registered confirmatory study: the record matches the code, a changed design is refused, the jobs and the
analysis are the ones registered."""

import copy
import dataclasses
import json

import pytest

from calirl_lite import confirm as study
from calirl_lite.confirm import RECORD, analyse, analyse_secondary, check_record, confirm, confirm_markdown, load_record, secondary_jobs, secondary_markdown, study_jobs
from calirl_lite.stages import calibration_stage, train_stage
from calirl_lite.train import train_job
from tests.test_reproduce import fake_result


def test_the_committed_record_is_the_design_the_code_has():
    """The study can run as registered: a change to the world's code or a budget needs an amendment of the record."""
    record = load_record()
    check_record(record)
    assert record["worlds"] and set(record["worlds"]).isdisjoint({0, 1}) and min(record["seeds"]["training"]) >= 100
    assert {(c["task"], c["left"], c["op"], c["right"]) for c in record["claims"]} >= {("arith-chat", "calibrated", ">", "static")}


@pytest.mark.parametrize("change, named", [(("design", "train", "steps", 60), "train.steps"),
                                           (("design", "calibration", "no_such_field", 1), "calibration.no_such_field"),
                                           (("hashes", "code", "world.py", "0" * 64), "calirl_lite/world.py")])
def test_a_changed_design_is_refused_and_named(change, named, ctx, tmp_path):
    record = copy.deepcopy(load_record())
    *path, key, value = change
    node = record
    for p in path:
        node = node[p]
    node[key] = value
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        check_record(record)
    bad = tmp_path / "record.json"
    bad.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="amend the record"):  # before any job runs: nothing is written
        confirm(ctx, out=tmp_path / "out", record_path=bad)
    assert not (tmp_path / "out").exists()


def test_the_study_has_every_registered_job_and_each_run_waits_for_its_calibration(ctx):
    record = load_record()
    jobs = {j.name: j for j in study_jobs(record, ctx)}
    runs = [j for j in jobs.values() if j.fn is train_job]
    n_seeds, n_worlds = len(record["seeds"]["training"]), len(record["worlds"])
    assert len(runs) == n_worlds * len(record["tasks"]) * 4 * n_seeds
    assert len([n for n in jobs if " · calibrate · " in n]) == n_worlds * len(record["tasks"]) * len(record["seeds"]["calibration"])
    job = jobs[f"world {record['worlds'][0]} · calibrated · arith-chat · seed 101"]
    cfg, wctx = job.args
    assert cfg.calibration_seed == 1 and wctx.world.seed == record["worlds"][0] and cfg.seed == 101
    assert job.after == (f"world {record['worlds'][0]}", f"world {record['worlds'][0]} · calibrate · arith-chat · 1")
    assert jobs[f"world {record['worlds'][0]} · oracle · arith-chat · seed 101"].after == (f"world {record['worlds'][0]}",)


def test_the_study_calibrates_with_its_records_budget_whatever_the_default_and_its_runs_read_that_calibration(ctx):
    """The record's calibration budget, not the kit's default, makes the study's simulators; a Calibrated run's folder
    and its calibration follow it, and a record with another budget gives other folders."""
    record = copy.deepcopy(load_record())
    record["design"]["calibration"].update(n_traces=777, steps=333)  # a budget the code's defaults are not
    check_record({**record, "hashes": {**record["hashes"], "settings": study.design_hashes(study.design(study.registered_calibration(record)))["settings"]}})
    jobs = {j.name: j for j in study_jobs(record, ctx)}
    w = record["worlds"][0]
    cal_cfg, _ = jobs[f"world {w} · calibrate · arith-chat · 1"].args
    assert (cal_cfg.n_traces, cal_cfg.steps) == (777, 333)
    run_cfg, wctx = jobs[f"world {w} · calibrated · arith-chat · seed 101"].args
    stage = train_stage(run_cfg, wctx)
    assert stage.calibration.cfg == cal_cfg and stage.calibration.folder == calibration_stage(cal_cfg, wctx).folder
    default = train_stage(run_cfg, ctx.with_world(w))  # the same run with the kit's default calibration: another folder
    assert (default.calibration.cfg.n_traces, default.calibration.cfg.steps) != (777, 333) and default.folder != stage.folder


def test_the_analysis_judges_every_claim_pooled_and_per_world_with_holm():
    record = load_record()
    scores = {"oracle": 0.85, "calibrated": 0.8, "static": 0.7, "naive": 0.3}  # every claim true in every run
    runs = {w: [fake_result(m, t, s, v + 0.01 * (s % 3), goals=100) for m, v in scores.items() for t in record["tasks"] for s in record["seeds"]["training"]]
            for w in record["worlds"]}
    result = analyse(record, runs)
    assert len(result["pooled"]) == len(record["claims"]) and all(c["holds"] and c["p_holm"] <= 0.05 for c in result["pooled"])
    assert all(c["seeds"] == len(record["worlds"]) * len(record["seeds"]["training"]) for c in result["pooled"])
    # one world where Static beats Calibrated: that world's claim fails, and the pooled one is not shown
    w = record["worlds"][0]
    runs[w] = [r if r.method != "static" or r.task != "arith-chat" else fake_result("static", r.task, r.seed, 0.95, goals=100) for r in runs[w]]
    result = analyse(record, runs)
    i = next(i for i, c in enumerate(result["pooled"]) if c["task"] == "arith-chat" and c["claim"] == "calibrated > static")
    assert not result["worlds"][str(w)][i]["holds"] and result["worlds"][str(record["worlds"][1])][i]["holds"] and not result["pooled"][i]["holds"]
    md = confirm_markdown({**result, "seconds": 1.0})
    assert "| arith-chat | calibrated > static |" in md and "**not shown**" in md and md.split("\n\n")[0].count("\n| ") == len(record["claims"])  # one row per claim under the header
    assert "| policy tokens trained per step | Static Context RL | Naive Interactive RL |" in md


def test_one_study_at_a_time():
    from calirl_lite.reproduce import ReproduceConfig

    with pytest.raises(ValueError, match="one at a time"):
        ReproduceConfig.make(robustness=True, confirm=True)


def test_the_record_ships_with_the_package():
    assert RECORD.is_file() and RECORD.parent.name == "registered"


def test_the_secondary_analyses_are_the_registered_runs_and_reuse_the_studys_own(ctx):
    record = load_record()
    ablation, curves = record["secondary"]["static_all_turns"], record["secondary"]["curves"]
    jobs = {j.name: j for j in secondary_jobs(record, ctx)}
    study = {j.name for j in study_jobs(record, ctx)}
    every = [j for n, j in jobs.items() if " · static-all · " in n]
    assert len(every) == len(ablation["worlds"]) * len(ablation["tasks"]) * len(ablation["seeds"])
    assert all(j.args[0].static_turns == "all" and j.args[0].method == "static" for j in every)
    w, s = ablation["worlds"][0], ablation["seeds"][0]
    assert {f"world {w} · static · arith-chat · seed {s}", f"world {w} · calibrated · arith-chat · seed {s}"} <= set(jobs) & study  # the study's runs, reused
    curve = [j for n, j in jobs.items() if " curve · " in n]
    assert len(curve) == len(curves["tasks"]) * len(curves["methods"]) * len(curves["seeds"])
    assert all(j.args[0].steps == curves["settings"]["steps"] and j.args[0].real_every == curves["settings"]["real_every"] for j in curve)


def test_the_secondary_analysis_judges_the_ablation_and_finds_each_curves_peak_and_collapse(tmp_path):
    record = load_record()
    ablation, plan = record["secondary"]["static_all_turns"], record["secondary"]["curves"]
    done = {}
    for w in ablation["worlds"]:
        for t in ablation["tasks"]:
            for s in ablation["seeds"]:  # every turn trained helps Static a little, Calibrated still ahead
                for name, method, v in (("static", "static", 0.6), ("static-all", "static", 0.7), ("calibrated", "calibrated", 0.85)):
                    done[f"world {w} · {name} · {t} · seed {s}"] = fake_result(method, t, s, v + 0.01 * (s % 3), goals=100)
    for t in plan["tasks"]:
        for m in plan["methods"]:
            for s in plan["seeds"]:
                folder = tmp_path / f"{m}-{t}-{s}"
                folder.mkdir()
                peak = 0.9 if m == "oracle" else 0.7  # every method peaks at step 30; static's seed 100 falls to 0.2
                points = [(step, peak * min(step, 30) / 30 - (0.5 if (m, s, step) == ("static", 100, 60) else 0.0)) for step in range(0, 61, 5)]
                log = [{"step": step, "reward": 0.5} for step in range(1, 61)] + [{"step": step, f"real_{'accuracy' if t == 'arith-chat' else 'bleu'}": v} for step, v in points]
                (folder / "log.json").write_text(json.dumps(log))
                done[f"world {plan['world']} · {m} curve · {t} · seed {s}"] = dataclasses.replace(fake_result(m, t, s, peak), run=str(folder), policy_tokens=3000, steps=60)
    result = analyse_secondary(record, done)
    assert [c["claim"] for c in result["ablation"]] == [f"{c['left']} > {c['right']}" for c in ablation["claims"]]
    assert all(c["holds"] and c["seeds"] == len(ablation["worlds"]) * len(ablation["seeds"]) for c in result["ablation"])
    static = result["curves"]["tasks"]["arith-chat"]["methods"]["static"]
    assert static["peak_step"] == 30 and static["collapsed"] == ["100"] and result["curves"]["tasks"]["arith-chat"]["methods"]["oracle"]["collapsed"] == []
    assert result["tokens"]["arith-chat"]["static-all"] == pytest.approx(0.0)  # fake runs trained no token: the count is read from each run
    from calirl_lite.plots import close_figure, plot_study_curves

    fig = plot_study_curves(result["curves"], path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0 and len(fig.axes) == len(plan["tasks"])
    assert len(fig.axes[0].lines) == len(plan["methods"]) * (len(plan["seeds"]) + 1) + 1  # each seed, each mean, the budget
    close_figure(fig)
    md = secondary_markdown(result)
    assert "| arith-chat | static-all > static |" in md and "Static at every turn" in md and "| arith-chat | Static Context RL | 0.000 | 0.700 (30) |" in md


def test_secondary_only_with_confirm():
    from calirl_lite.reproduce import ReproduceConfig

    with pytest.raises(ValueError, match="give it with --confirm"):
        ReproduceConfig.make(secondary=True)


def test_the_notebook_shows_your_own_run_of_the_study_where_there_is_one(tmp_path, capsys, monkeypatch):
    from calirl_lite import confirm as C
    from calirl_lite.context import Context
    from calirl_lite.world import WorldConfig

    ctx = Context("smoke", WorldConfig.for_mode("smoke", cache_dir=str(tmp_path)), tmp_path / "runs", tmp_path, tmp_path / "results")
    monkeypatch.setattr(C, "MEASURED", tmp_path / "measured")
    assert C.study_result(ctx) is None and "calirl reproduce --confirm" in capsys.readouterr().out
    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "confirm.json").write_text(json.dumps({"seconds": 600, "workers": 2, "pooled": []}))
    assert C.study_result(ctx)["seconds"] == 600 and "as measured for docs/results.md" in capsys.readouterr().out
    (ctx.results_dir("confirm") / "confirm.json").write_text(json.dumps({"seconds": 60, "workers": 2, "pooled": []}))
    assert C.study_result(ctx)["seconds"] == 60 and "your run (1.0 min" in capsys.readouterr().out
