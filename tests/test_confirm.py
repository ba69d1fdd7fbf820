"""The registered confirmatory study: the record matches the code, a changed design is refused, the jobs and the
analysis are the ones registered."""

import copy
import json

import pytest

from calirl_lite.confirm import RECORD, analyse, check_record, confirm, confirm_markdown, load_record, study_jobs
from calirl_lite.train import train_job
from tests.test_reproduce import fake_result


def test_the_committed_record_is_the_design_the_code_has():
    """The study can run as registered: a change to the world's code or a budget needs an amendment of the record."""
    record = load_record()
    check_record(record)
    assert record["worlds"] and set(record["worlds"]).isdisjoint({0, 1}) and min(record["seeds"]["training"]) >= 100
    assert {(c["task"], c["left"], c["op"], c["right"]) for c in record["claims"]} >= {("arith-chat", "calibrated", ">", "static")}


@pytest.mark.parametrize("change, named", [(("design", "train", "steps", 60), "train.steps"),
                                           (("design", "calibration", "n_traces", 600), "calibration.n_traces"),
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
    assert "| arith-chat | calibrated > static |" in md and "**not shown**" in md and md.count("\n| ") == len(record["claims"])  # one row per claim under the header


def test_one_study_at_a_time():
    from calirl_lite.reproduce import ReproduceConfig

    with pytest.raises(ValueError, match="one at a time"):
        ReproduceConfig.make(robustness=True, confirm=True)


def test_the_record_ships_with_the_package():
    assert RECORD.is_file() and RECORD.parent.name == "registered"
