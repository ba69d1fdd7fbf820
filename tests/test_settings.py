"""Seeds, the smoke switch, settings dataclasses and atomic writes."""

import dataclasses
import json
import random

import numpy as np
import pytest
import torch

import calirl_lite
from calirl_lite import io, shift
from calirl_lite.settings import Settings, field_docs


def test_set_seed_makes_random_numpy_and_torch_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    calirl_lite.set_seed(123)
    first = draw()
    calirl_lite.set_seed(123)
    assert draw() == first
    calirl_lite.set_seed(124)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        calirl_lite.set_seed(bad)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_smoke_switch(monkeypatch, value, expected):
    monkeypatch.setenv("CALIRL_SMOKE", value)
    assert calirl_lite.smoke_mode() is expected


def test_smoke_switch_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("CALIRL_SMOKE", "maybe")
    with pytest.raises(ValueError, match="CALIRL_SMOKE"):
        calirl_lite.smoke_mode()


def test_make_applies_smoke_values_then_overrides(monkeypatch):
    monkeypatch.setenv("CALIRL_SMOKE", "1")
    assert shift.ShiftConfig.make().n_random_mdps == shift.ShiftConfig.SMOKE["n_random_mdps"]
    assert shift.ShiftConfig.make(n_random_mdps=7).n_random_mdps == 7
    monkeypatch.setenv("CALIRL_SMOKE", "0")
    assert shift.ShiftConfig.make().n_random_mdps == shift.ShiftConfig().n_random_mdps
    with pytest.raises(ValueError, match="no field"):
        shift.ShiftConfig.make(nonsense=1)


@pytest.mark.parametrize("smoke, klass, mode", [("0", "0", "full"), ("0", "1", "class"), ("1", "0", "smoke"), ("1", "1", "smoke")])
def test_run_mode_reads_both_switches_smoke_first(monkeypatch, smoke, klass, mode):
    monkeypatch.setenv("CALIRL_SMOKE", smoke)
    monkeypatch.setenv("CALIRL_CLASS", klass)
    assert calirl_lite.run_mode() == mode
    assert calirl_lite.class_mode() is (mode == "class") and calirl_lite.smoke_mode() is (mode == "smoke")
    assert calirl_lite.by_mode(full="F", klass="C", smoke="S") == mode[0].upper()


def test_class_switch_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("CALIRL_SMOKE", "0")
    monkeypatch.setenv("CALIRL_CLASS", "sometimes")
    with pytest.raises(ValueError, match="CALIRL_CLASS"):
        calirl_lite.run_mode()


def test_make_applies_class_values_in_class_mode(monkeypatch):
    from calirl_lite.lab import LabConfig
    from calirl_lite.stages import TrainConfig

    monkeypatch.setenv("CALIRL_SMOKE", "0")
    monkeypatch.setenv("CALIRL_CLASS", "1")
    assert shift.ShiftConfig.make().n_random_mdps == shift.ShiftConfig.CLASS["n_random_mdps"] != shift.ShiftConfig().n_random_mdps
    assert TrainConfig.make().n_eval == TrainConfig.CLASS["n_eval"] and TrainConfig.make(steps=7).steps == 7
    assert LabConfig.make(tasks=("arith-chat",)).tasks == ("arith-chat",) and LabConfig.make().seeds == (0,)


def all_settings_classes():
    import importlib

    for module in ("bench", "stages", "evaluate", "lab", "reproduce", "shift", "world"):  # modules that define settings
        importlib.import_module(f"calirl_lite.{module}")

    todo, found = [Settings], []
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


@pytest.mark.parametrize("cls", all_settings_classes(), ids=lambda c: c.__name__)
def test_every_settings_field_has_a_docstring(cls):
    docs = field_docs(cls)
    assert set(docs) == {f.name for f in dataclasses.fields(cls)}
    assert all(docs.values()), [name for name, doc in docs.items() if not doc]


@pytest.mark.parametrize("cls", all_settings_classes(), ids=lambda c: c.__name__)
def test_smoke_and_class_sizes_are_fields_with_valid_values(cls):
    for sizes in (cls.SMOKE, cls.CLASS):
        assert set(sizes) <= {f.name for f in dataclasses.fields(cls)}
        defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls) if f.name in sizes} if sizes else {}
        cls(**{**defaults, **sizes})  # the checks of __post_init__ pass


def test_field_docs_reads_the_docstring_under_each_field():
    assert "per-step error" in field_docs(shift.ShiftConfig)["eps"]


def test_config_round_trip_and_bad_file(tmp_path):
    cfg = shift.ShiftConfig(horizons=(3, 6), eps=0.01)
    path = cfg.save(tmp_path)
    assert json.loads(path.read_text())["settings"] == "ShiftConfig"
    assert shift.ShiftConfig.load(path) == cfg
    path.write_text('{"eps": 0.1,\n "horizons": [1, 2],,}')
    with pytest.raises(ValueError, match=r"config.json: line 2"):
        shift.ShiftConfig.load(path)
    path.write_text('{"epsilon": 0.1}')
    with pytest.raises(ValueError, match="epsilon"):
        shift.ShiftConfig.load(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    io.atomic_write_json(target, {"ok": 1})

    def fail(f):
        f.write("half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left behind
    with pytest.raises(ValueError):  # NaN is not JSON: refused before the file is touched
        io.atomic_write_json(target, {"x": float("nan")})
    assert json.loads(target.read_text()) == {"ok": 1}


def test_the_context_takes_its_folders_mode_and_world_from_the_environment(tmp_path, monkeypatch):
    from calirl_lite.env import context

    for name in ("results", "runs", "cache"):
        monkeypatch.setenv(f"CALIRL_{name.upper()}", str(tmp_path / name))
    monkeypatch.setenv("CALIRL_WORLD_SEED", "3")
    ctx = context()
    assert (ctx.results, ctx.runs, ctx.cache) == (tmp_path / "results", tmp_path / "runs", tmp_path / "cache")
    assert ctx.mode == "smoke" and ctx.world.seed == 3 and ctx.world.cache_dir == str(tmp_path / "cache")
    assert ctx.world.train_steps == ctx.make(type(ctx.world)).train_steps  # the world is sized by the mode
    assert ctx.results_dir("01_x") == tmp_path / "results" / "01_x" and (tmp_path / "results" / "01_x").is_dir()
    monkeypatch.setenv("CALIRL_WORLD_SEED", "a lot")
    with pytest.raises(ValueError, match="CALIRL_WORLD_SEED='a lot' is not a seed"):
        context()


def test_folders_outside_a_checkout_go_to_the_user_cache(tmp_path):
    from calirl_lite.paths import places

    where = places({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, cwd=tmp_path)
    assert where.results == tmp_path / "results"
    assert (where.runs, where.cache) == (tmp_path / "xdg" / "calirl_lite" / "runs", tmp_path / "xdg" / "calirl_lite" / "cache")


def test_project_root_is_found_from_a_subfolder():
    from pathlib import Path

    from calirl_lite.paths import project_root

    here = Path(__file__).resolve().parent
    assert (project_root(here) / "pyproject.toml").is_file()
    assert project_root(here) == here.parent
