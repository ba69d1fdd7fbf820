"""What several tests and notebooks of one session read, made once (whichever asks first) into the session's folders.

Each maker is memoised: the first caller makes it (or finds it finished in the runs folder), later callers get the
same objects. The conftest's fixtures hand these to tests; before nbmake executes a notebook,
:func:`before_notebook` makes what that notebook reuses, so its time does not depend on which test ran first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import json
import threading
from typing import Any, Callable, Iterator

from calirl_lite.calibration import calibrate_stage_once
from calirl_lite.colab import english_budget
from calirl_lite.context import Context
from calirl_lite.env import context
from calirl_lite.results import RunResult
from calirl_lite.stages import METHODS, CalibrationConfig, Stage, TrainConfig, calibration_stage
from calirl_lite.train import train
from calirl_lite.world import WorldConfig, shipped_world

TOY_TASKS = ("arith-chat", "docedit-chat")


@functools.cache
def ctx() -> Context:
    """The session's context: smoke mode (conftest sets ``CALIRL_SMOKE=1``) and its temporary folders."""
    return context()


@functools.cache
def full_ctx() -> Context:
    """A context at full size on the world shipped with the kit (world seed 0: nothing is built), runs in the session's
    folder."""
    full = dataclasses.replace(ctx(), mode="full", world=WorldConfig(cache_dir=str(ctx().cache)))
    if shipped_world(full.world) is None:
        raise AssertionError("the world shipped with the kit is not the world the code builds: `make world` refreshes it")
    return full


@functools.cache
def calibrations() -> dict[str, Stage]:
    """The smoke calibration of both toy tasks (seed 0): each task's calibration stage, its run finished."""
    out = {}
    for task in TOY_TASKS:
        stage = calibration_stage(ctx().make(CalibrationConfig, task=task), ctx())
        calibrate_stage_once(stage)
        out[task] = stage
    return out


@functools.cache
def method_runs(task: str = "arith-chat") -> dict[str, RunResult]:
    """Every method's smoke run on ``task``, seed 0, with the default settings (the runs notebook 04 reuses)."""
    calibrations()
    return {m: train(ctx().make(TrainConfig, method=m, task=task), ctx(), progress=False) for m in METHODS}


@functools.cache
def smol_calibration() -> tuple[Stage, dict[str, Any]]:
    """SmolLM2's calibration on math-chat at the sizes of notebooks 03 and 04's real-model sections in smoke mode."""
    cfg = ctx().make(CalibrationConfig, profile="smol", task="math-chat", **english_budget("smol", ctx().mode)[0])
    stage = calibration_stage(cfg, ctx())
    return stage, calibrate_stage_once(stage)


@functools.cache
def smol_runs() -> dict[str, RunResult]:
    """Every method trained on SmolLM2 and math-chat against that calibration (notebook 04's real-model section)."""
    stage, _ = smol_calibration()
    sizes = english_budget("smol", ctx().mode)[1]
    return {m: train(ctx().make(TrainConfig, method=m, task="math-chat", profile="smol", adapter=str(stage.folder / "adapter"),
                                traces=str(stage.folder / "traces.jsonl"), **sizes), ctx(), progress=False) for m in METHODS}


@functools.cache
def reproduced() -> dict[str, Any]:
    """The smoke reproduction (``calirl reproduce``: one seed, in this process) into ``results/reproduce/``, on the
    session's calibrations and method runs (made first, so its training runs are all reused) — notebook 05's too."""
    from calirl_lite.reproduce import ReproduceConfig, reproduce

    method_runs("arith-chat"), method_runs("docedit-chat")
    return reproduce(ctx().make(ReproduceConfig, workers=1), ctx(), out=ctx().results / "reproduce")


NOTEBOOK_NEEDS = {
    "03_simulator_calibration.ipynb": (smol_calibration,),
    "04_static_vs_interactive_grpo.ipynb": (calibrations, method_runs, lambda: method_runs("docedit-chat"), smol_runs),
    "05_evaluation_and_reproduction.ipynb": (reproduced,),
}
"""What each notebook reuses of the session's runs (the rest it makes itself)."""


def before_notebook(name: str) -> None:
    """Make what notebook ``name`` reuses, once per session."""
    for make in NOTEBOOK_NEEDS.get(name, ()):
        make()


def worker_probe(ctx: Context) -> dict[str, Any]:
    """A pool job (tests/test_context.py): the kit's variables this process sees, the world its context names, and
    the base policy's scores with the real users on four of that world's test goals."""
    import os

    from calirl_lite.evaluate import evaluate_policy
    from calirl_lite.rollout import base_policy
    from calirl_lite.stages import resolve
    from calirl_lite.users import ScriptedUsers

    stage = resolve(ctx, "tiny", "arith-chat")
    goals = [t["goal"] for t in stage.world.tasks("arith-chat", "test")][:4]
    scores, _ = evaluate_policy(base_policy(stage.models), ScriptedUsers(), stage.task, goals, stage.budget, seed=3)
    return {"calirl_variables": sorted(k for k in os.environ if k.startswith("CALIRL_")), "world": str(stage.world.folder), "scores": scores}


def stamp(log: Any, name: str, wait: float = 0.0) -> str:
    """A pool job (tests/test_reproduce.py): sleep ``wait`` seconds, then append ``name`` to the file ``log``."""
    import time

    time.sleep(wait)
    with open(log, "a") as f:
        f.write(name + "\n")
    return name


@contextlib.contextmanager
def chat_server(reply: Callable[[dict, int], str]) -> Iterator[tuple[str, list]]:
    """A local OpenAI-compatible chat endpoint on 127.0.0.1, speaking the real protocol: ``POST
    /v1/chat/completions`` answers ``{"choices": [{"message": …}], "usage": …}`` with ``reply(body, calls so far)``
    (words counted as tokens); any other path is a 404. Yields ``(root address, the request bodies it got)``."""
    calls: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(body)
            if self.path != "/v1/chat/completions":
                self.send_response(404)
                self.end_headers()
                return
            text = reply(body, len(calls))
            read = sum(len(str(m["content"]).split()) for m in body["messages"])
            out = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": read, "completion_tokens": len(text.split()), "total_tokens": read + len(text.split())}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
