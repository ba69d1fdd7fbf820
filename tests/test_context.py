"""The run context: the environment is read at the entry only; a worker gets its context as an argument and its
result does not depend on the environment of the process that started it; the stage contract keys folders on the
world a stage actually uses; the shipped world."""

import ast
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import calirl_lite
from calirl_lite.pool import run_pool
from calirl_lite.stages import CalibrationConfig, TrainConfig, calibration_stage, train_stage
from calirl_lite.world import SHIPPED, WorldConfig, shipped_world
from tests import shared

PACKAGE = Path(calirl_lite.__file__).parent

ENVIRONMENT_ALLOWED = {
    ("env", "*"): "the entry: the one reader of the kit's variables",
    ("settings", "_switch"): "the run modes' single reader (calirl_lite.settings.run_mode)",
    ("cli", "cmd_notebooks"): "the command line hands its environment to the notebooks' kernels",
    ("plots", "<module>"): "matplotlib's backend (a library's setting, not the kit's)",
    ("pool", "_worker_start"): "a worker removes the kit's variables and sets the libraries' (writes)",
    ("quiet", "set_loudness"): "the libraries' verbosity and bars (writes)",
    ("trainer", "grpo_args"): "transformers' TensorBoard folder (a write)",
}
"""Where the package may touch ``os.environ``, and why."""


def environment_uses() -> list[tuple[str, str, int]]:
    """(module, enclosing function or '<module>', line) of every use of ``os.environ`` or ``os.getenv`` in the package."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for func in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
            name = "<module>" if func is tree else func.name
            inner = {id(x) for f in ast.walk(func) if f is not func and isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for x in ast.walk(f)}
            for node in ast.walk(func):
                if id(node) in inner:
                    continue
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and isinstance(node.value, ast.Name) and node.value.id == "os":
                    found.append((path.stem, name, node.lineno))
    return found


def test_no_module_below_the_entry_reads_the_environment():
    uses = environment_uses()
    assert uses, "the scan found nothing: it is broken"
    stray = [f"{m}.py:{line} ({f})" for m, f, line in uses if (m, "*") not in ENVIRONMENT_ALLOWED and (m, f) not in ENVIRONMENT_ALLOWED]
    assert not stray, "the environment is read below the entry (hand the setting down in the Context instead):\n" + "\n".join(stray)
    # and the scan does see a read where one is
    src = "import os\n\ndef f():\n    return os.environ.get('CALIRL_X')\n"
    assert any(isinstance(n, ast.Attribute) and n.attr == "environ" for n in ast.walk(ast.parse(src)))


def test_lower_layers_build_settings_at_the_contexts_mode_not_the_environments():
    """Below the entry no settings are made with ``.make()`` (which reads the run mode): they take ``ctx.make``."""
    stray = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in ("env", "cli", "settings"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "make" and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id[0].isupper():
                stray.append(f"{path.stem}.py:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("run_mode", "smoke_mode", "class_mode"):
                stray.append(f"{path.stem}.py:{node.lineno}")
    assert not stray, stray


@pytest.mark.slow
def test_a_workers_result_does_not_depend_on_the_parents_environment(ctx, world, monkeypatch):
    here = run_pool([("probe", shared.worker_probe, (ctx,))], 1, "probe")["probe"]  # in this process
    for name, value in (("CALIRL_WORLD_SEED", "5"), ("CALIRL_SMOKE", "0"), ("CALIRL_CLASS", "1"), ("CALIRL_RUNS", "/nonexistent/runs"),
                        ("CALIRL_CACHE", "/nonexistent/cache")):
        monkeypatch.setenv(name, value)  # what a worker inherited through its environment, if it read any
    there = run_pool([("probe", shared.worker_probe, (ctx,)), ("twice", shared.worker_probe, (ctx,))], 2, "probe")
    assert there["probe"]["calirl_variables"] == [] and there["twice"]["calirl_variables"] == []  # none reach a worker
    assert here["scores"] == there["probe"]["scores"] == there["twice"]["scores"]
    assert there["probe"]["world"] == here["world"] == str(world.folder)


def test_folders_are_keyed_on_the_world_a_stage_actually_uses(ctx):
    other = ctx.with_world(7)
    toy = TrainConfig.make(method="oracle")
    assert train_stage(toy, ctx).folder != train_stage(toy, other).folder  # another world: other runs
    english = TrainConfig.make(method="oracle", profile="smol", task="math-chat")
    assert train_stage(english, ctx).world_config is None and train_stage(english, ctx).folder == train_stage(english, other).folder  # uses none
    chitchat = CalibrationConfig.make(profile="tiny", task="chitchat")
    assert calibration_stage(chitchat, ctx).folder != calibration_stage(chitchat, other).folder  # the tiny profile's LM is the world's
    assert train_stage(TrainConfig.make(method="static"), ctx).calibration.folder == calibration_stage(CalibrationConfig.make(), ctx).folder
    assert train_stage(TrainConfig.make(method="oracle"), ctx).calibration is None


def test_the_command_line_starts_without_the_model_libraries():
    code = "import sys; from calirl_lite.cli import build_parser; build_parser(['--help']); print(sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the shipped world


def test_the_shipped_world_is_the_world_the_code_builds_and_its_files_are_whole():
    manifest = json.loads((SHIPPED / "tiny-seed0" / "world.json").read_text())
    assert manifest["key"] == WorldConfig().key(), "the world's code or settings changed: `make world` ships it anew"
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((SHIPPED / "tiny-seed0" / name).read_bytes()).hexdigest() == digest, name
    assert shipped_world(WorldConfig(cache_dir="/anywhere")) is not None and shipped_world(WorldConfig(seed=1)) is None
    assert "corpus.jsonl" not in manifest["files"] and (SHIPPED / "tiny-seed0" / "model" / "model.safetensors").stat().st_size < 4 * 2**20


@pytest.mark.slow
def test_the_shipped_world_rebuilds_bit_for_bit_as_far_as_its_fingerprint():
    """Once per suite run: world seed 0 rebuilt from the code with its shipped settings — its task splits and tokenizer
    whole, its LM's pre-training up to the step whose weights' SHA-256 the shipped world records — is the shipped world
    bit for bit. (``calirl world build --verify`` rebuilds the whole of it: 2.5 min.) It runs in a process of its own with
    torch's default threads, as the world was shipped: the test processes run on one thread each, and a sum split over
    other threads rounds otherwise."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    code = "import json; from calirl_lite.world import verify_world; print(json.dumps(verify_world(0, prefix=True)))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["key_matches"] and report["prefix_step"] == 100
    assert report["identical"], f"differ from the shipped world: {report['differ']} (another CPU? `calirl world build --verify` compares what the LMs can do)"


def test_verify_names_what_differs_and_judges_another_cpus_world_by_what_its_lm_can_do(capsys):
    from calirl_lite.cli import print_verification

    same = {"seed": 0, "build_seconds": 150.0, "key_matches": True, "identical": True, "differ": [], "weights": {}, "abilities": {}}
    assert print_verification(same) == 0 and "bit for bit" in capsys.readouterr().out
    rounds = {**same, "identical": False, "differ": ["model/model.safetensors"], "weights": {"max_abs_difference": 3e-7, "tensor": "lm_head.weight"},
              "abilities": {"shipped": {"arith_right": 0.76, "name": 0.98}, "rebuilt": {"arith_right": 0.75, "name": 0.97}}}
    assert print_verification(rounds) == 0
    out = capsys.readouterr().out
    assert "files that differ: model/model.safetensors" in out and "arith_right" in out and "rounds otherwise" in out
    worse = {**rounds, "abilities": {"shipped": {"arith_right": 0.76}, "rebuilt": {"arith_right": 0.50}}}
    assert print_verification(worse) == 1
    assert print_verification({**same, "identical": False, "differ": ["tasks/arith-chat-test.jsonl"]}) == 1  # not a rounding: the code changed
    assert print_verification({**same, "key_matches": False}) == 1


READ_ONLY = """
import os, sys
guarded = sys.argv[1]
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def refuse(event, args):  # what the operating system does for a folder the process may not write to
    if event == "open" and args[0] is not None and str(args[0]).startswith(guarded):
        if (args[1] and any(c in args[1] for c in "wax+")) or (args[2] or 0) & WRITES:
            raise PermissionError(13, "Permission denied", str(args[0]))
    elif event.startswith(("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.chmod", "shutil.")) and args and str(args[0]).startswith(guarded):
        raise PermissionError(13, "Permission denied", str(args[0]))

sys.addaudithook(refuse)
from calirl_lite.env import context
from calirl_lite.evaluate import EvaluateConfig, evaluate_seeds
ctx = context()
print(ctx.toy_world().folder)
print(evaluate_seeds(EvaluateConfig.make(n_eval=2, seeds=(0,)), ctx, progress=False).mean["accuracy"] >= 0)
"""


@pytest.mark.slow
def test_a_finished_world_is_read_without_write_access(tmp_path, ctx):
    """A teacher's prepared cache or an installed package is read-only: a finished world there is loaded and used
    without writing (a child process in which every write under the cache fails, as in a read-only folder; root
    would write through a mode of 0o555)."""
    import shutil

    from calirl_lite.world import build_world

    built = ctx.toy_world(verbose=False)  # the session's smoke world, copied into a cache of its own
    cache = tmp_path / "cache"
    shutil.copytree(built.folder, cache / built.folder.name)
    world = build_world(dataclasses.replace(ctx.world, cache_dir=str(cache)), verbose=False)
    env = {**os.environ, "CALIRL_CACHE": str(cache), "CALIRL_RUNS": str(tmp_path / "runs"), "CALIRL_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, "-c", READ_ONLY, str(cache)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(world.folder), "True"]
    (cache / "probe").mkdir()  # the guard is real: a write there fails
    probe = READ_ONLY.split("sys.addaudithook(refuse)")[0] + "sys.addaudithook(refuse)\nopen(sys.argv[1] + '/probe/x', 'w')\n"
    assert "Permission denied" in subprocess.run([sys.executable, "-c", probe, str(cache)], capture_output=True, text=True).stderr
