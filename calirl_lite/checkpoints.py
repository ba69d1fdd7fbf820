"""Resuming training exactly: which checkpoint to resume from, and never training a finished run again.

Both trainers of the kit (SFT of the simulator, GRPO of the policy) write ``checkpoint-N`` folders through
transformers' ``Trainer``. An interrupted run resumes from the newest *complete* one — its
``trainer_state.json`` parses (transformers writes it in place, so a kill can tear it); a torn one is skipped
with a warning that names it. A run whose newest checkpoint has already reached the step budget is loaded from
it, not trained further: ``Trainer.train(resume_from_checkpoint=…)`` would otherwise take one more step.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any


def completed_steps(checkpoint: str | Path) -> int | None:
    """The optimiser steps a checkpoint holds (``global_step`` of its trainer_state.json), or None if the file is
    missing or does not parse."""
    path = Path(checkpoint) / "trainer_state.json"
    try:
        return int(json.loads(path.read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_checkpoint(folder: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder whose trainer_state.json parses, or None; torn ones are skipped with a warning."""
    found = sorted((p for p in Path(folder).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for p in found:
        if completed_steps(p) is not None:
            return str(p)
        warnings.warn(f"skipping checkpoint {p}: its trainer_state.json is missing or does not parse (an interrupted save)", stacklevel=2)
    return None


def train_or_resume(trainer: Any, checkpoints: str | Path, max_steps: int) -> str | None:
    """Train ``trainer`` up to ``max_steps``, resuming from the newest complete checkpoint under ``checkpoints``;
    returns that checkpoint (None when training started afresh).

    When the checkpoint already holds ``max_steps`` steps the run had finished training (it was stopped while
    saving its outputs or evaluating): its weights and state are loaded and nothing is trained.
    """
    from transformers import TrainerState

    checkpoint = last_checkpoint(checkpoints)
    if checkpoint is not None and (completed_steps(checkpoint) or 0) >= max_steps:
        trainer._load_from_checkpoint(checkpoint)
        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        return checkpoint
    trainer.train(resume_from_checkpoint=checkpoint)
    return checkpoint
