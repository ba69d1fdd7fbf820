"""The kit silences only the library warnings its own calls cause."""

import subprocess
import sys
import warnings

import pytest

import calirl_lite  # noqa: F401  (importing the kit installs its filters)


def _shown(message: str, category: type[Warning]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        calirl_lite.quiet.filter_library_warnings()
        warnings.warn(message, category, stacklevel=1)
    return [str(w.message) for w in caught]


def test_transformers_renamed_checkpointing_methods_are_silenced_and_other_warnings_show():
    for name in ("gradient_checkpointing_enable", "gradient_checkpointing_disable", "is_gradient_checkpointing"):
        assert _shown(f"`{name}` is deprecated and will be removed in v6.", FutureWarning) == []
    assert _shown("`something_else` is deprecated", FutureWarning) == ["`something_else` is deprecated"]
    assert _shown("`gradient_checkpointing_enable` is deprecated", UserWarning) != []


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_quiet_turns_every_progress_bar_off_in_this_process_and_its_workers():
    code = ("from calirl_lite.quiet import set_loudness; set_loudness(quiet=True)\n"
            "import os; from tqdm.auto import tqdm; from transformers.utils import logging\n"
            "print(tqdm(range(3)).disable, os.environ['TQDM_DISABLE'], logging.get_verbosity() == logging.ERROR)")
    assert _run(code).stdout.split() == ["True", "1", "True"]


def test_verbose_shows_the_warnings_the_kit_silences():
    code = ("import warnings, calirl_lite; from calirl_lite.quiet import set_loudness; set_loudness(verbose=True)\n"
            "warnings.warn('`gradient_checkpointing_enable` is deprecated', FutureWarning)")
    assert "gradient_checkpointing_enable" in _run(code).stderr
    assert "gradient_checkpointing_enable" not in _run(code.replace("set_loudness(verbose=True)", "set_loudness()")).stderr


def test_quiet_and_verbose_exclude_each_other_on_the_command_line(capsys):
    from calirl_lite.cli import main

    with pytest.raises(SystemExit) as e:
        main(["-q", "-v", "bench", "memory"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_calirl_quiet_trains_and_evaluates_without_a_single_progress_bar(tmp_path):
    import os

    env = {**os.environ, "CALIRL_SMOKE": "1"}
    args = [sys.executable, "-m", "calirl_lite", "{}", "train", "--method", "oracle", "--out-dir", str(tmp_path / "{}")]
    loud = subprocess.run([a.format("-v", "loud") for a in args], capture_output=True, text=True, env=env, check=True)
    quiet = subprocess.run([a.format("-q", "quiet") for a in args], capture_output=True, text=True, env=env, check=True)
    assert "%|" in loud.stderr  # the kit's bars (rollouts, the reward bar) and the libraries' draw here
    assert "%|" not in quiet.stderr and "%|" not in quiet.stdout
    assert "Oracle on arith-chat" in quiet.stdout  # the result still shows
