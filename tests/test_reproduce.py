"""`calirl reproduce`: every stage, the table with the paper's claims checked, the gap study, reuse of finished runs."""

import json

import pytest

from calirl_lite.cli import main
from calirl_lite.gap_study import gap_trends
from calirl_lite.reproduce import ReproduceConfig, reproduce
from calirl_lite.results import RunResult, summarise, table_markdown


def fake_result(method, task, seed, real, base=0.5, sim=0.6):
    metric = "accuracy" if task == "arith-chat" else "bleu"
    return RunResult(method, "tiny", task, seed, metric, "x", 30, {"real": {metric: base}, "simulator": {metric: base}},
                     {"real": {metric: real}, "simulator": {metric: sim}}, f"/runs/{method}-{task}-{seed}")


def test_the_summary_checks_each_claim_on_the_means_and_keeps_every_seed():
    scores = {"oracle": 0.9, "calibrated": 0.8, "static": 0.7, "naive": 0.4}  # naive below base (0.5): the docedit collapse
    results = [fake_result(m, t, s, v + 0.01 * s) for m, v in scores.items() for t in ("arith-chat", "docedit-chat") for s in (0, 1, 2)]
    summary = summarise(results, (0, 1, 2))
    doc = summary["tasks"]["docedit-chat"]
    assert doc["methods"]["naive"]["per_seed"] == pytest.approx({"0": 0.4, "1": 0.41, "2": 0.42})
    assert doc["methods"]["naive"]["mean"] == pytest.approx(0.41) and doc["methods"]["naive"]["std"] == pytest.approx(0.00816, abs=1e-4)
    assert all(c["holds"] for t in summary["tasks"].values() for c in t["claims"])
    assert "naive < base" in [c["claim"] for c in doc["claims"]] and "naive < base" not in [c["claim"] for c in summary["tasks"]["arith-chat"]["claims"]]
    # a world where static beats calibrated: that claim is reported as failing, in the table too
    results = [r if r.method != "static" else fake_result("static", r.task, r.seed, 0.95) for r in results]
    summary = summarise(results, (0, 1, 2))
    failing = [c["claim"] for c in summary["tasks"]["arith-chat"]["claims"] if not c["holds"]]
    assert failing == ["oracle > static", "calibrated > static"]
    assert "calibrated > static — does NOT hold (0.810 vs 0.950)" in table_markdown(summary)


def test_gap_trends_count_the_pairs_in_order_and_check_the_bound():
    rows = [{"task": "t", "w": w, "horizon": h, "eps": w, "drop": w * h / 10, "bound": w * h} for w in (0.0, 0.5, 1.0) for h in (4, 8)]
    assert gap_trends(rows)["t"] == {"drop_rises_with_gap": "6/6", "drop_rises_with_horizon": "2/2", "under_bound": True}  # w = 0: no drop
    rows[3]["drop"], rows[5]["drop"] = 0.1, 0.05  # at H = 8: w = 0.5 drops 0.1 (0.2 at H = 4), w = 1 drops 0.05 (0.4 at H = 4)
    assert gap_trends(rows)["t"] == {"drop_rises_with_gap": "5/6", "drop_rises_with_horizon": "0/2", "under_bound": True}
    rows[-1]["drop"] = 99.0  # above its bound
    assert gap_trends(rows)["t"]["under_bound"] is False


def test_reproduce_runs_every_stage_writes_the_table_and_reuses_finished_runs(tmp_path):
    cfg = ReproduceConfig.make(workers=1)  # smoke mode: one seed, tiny runs
    summary = reproduce(cfg, out=tmp_path)
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["seeds"] == [0] and table["seconds"] > 0 and table["workers"] == 1
    for task in ("arith-chat", "docedit-chat"):
        methods = table["tasks"][task]["methods"]
        assert set(methods) == {"base", "static", "naive", "calibrated", "oracle"}
        assert all(set(m["per_seed"]) == {"0"} and 0.0 <= m["mean"] <= 1.0 for m in methods.values())
        assert len(table["tasks"][task]["claims"]) == (5 if task == "docedit-chat" else 4)
    md = (tmp_path / "table.md").read_text()
    assert "| Calibrated Interactive RL |" in md and "naive < base" in md and "calirl reproduce` took" in md
    for name in ("table.png", "gap_vs_drop.png", "gap_vs_drop.json"):
        assert (tmp_path / name).stat().st_size > 0
    gap = json.loads((tmp_path / "gap_vs_drop.json").read_text())
    assert {(r["w"], r["horizon"]) for r in gap["rows"] if r["task"] == "arith-chat"} == {(w, h) for w in cfg.gap_mixes for h in cfg.gap_horizons}
    assert all(r["drop"] == pytest.approx(abs(r["sim"] - r["real"])) for r in gap["rows"])
    assert all(r["eps"] == 0 and r["drop"] == 0 for r in gap["rows"] if r["w"] == 0)  # w = 0 is the real users themselves
    again = reproduce(cfg, out=tmp_path)  # every run finished: nothing is trained again, the numbers are the same
    assert again["tasks"] == summary["tasks"] and again["runs"] == summary["runs"]
    assert again["reused_runs"] == 8  # (the first call may reuse runs other tests trained with the same settings)
    assert "8 of 8 training runs had finished before and were reused" in (tmp_path / "table.md").read_text()


def test_reproduce_refuses_bad_settings_before_any_work(capsys):
    assert main(["reproduce", "--profile", "smol"]) == 2
    assert "toy world of the 'tiny' profile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "--gap-mixes", "0", "1.5"])
    assert "argument --gap-mixes: must be a number from 0 to 1, got 1.5" in capsys.readouterr().err


def test_a_failed_run_in_a_worker_process_stops_the_stage_with_its_name():
    from calirl_lite.pool import run_pool
    from calirl_lite.reproduce import train_job

    jobs = [("ppo · arith-chat · seed 0", train_job, ("tiny", "ppo", "arith-chat", 0))]
    for workers in (1, 2):  # in this process, and in spawned single-threaded workers
        with pytest.raises(ValueError, match=r"train: ppo · arith-chat · seed 0 failed: unknown method 'ppo'"):
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
