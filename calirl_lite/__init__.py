"""calirl_lite: understand and reproduce Calibrated Interactive RL on a laptop.

The package backs the numbered notebooks in ``notebooks/``; each notebook cell calls one
or two of its public functions. Modules, one per idea of the paper:

* :mod:`calirl_lite.shift` — compounding distribution shift in tabular MDPs, the O(H²) bound and the O(H) one of a final reward (notebook 01)
* :mod:`calirl_lite.task_family` — what a task family is; personas and the scripted people who play any family
* :mod:`calirl_lite.toy_tasks`, :mod:`calirl_lite.english_tasks`, :mod:`calirl_lite.tasks` — arith-chat and docedit-chat; math-chat, doc-chat and chitchat; any task by name
* :mod:`calirl_lite.prompts` — the chat as the policy and as a user simulator see it
* :mod:`calirl_lite.world` — the ``tiny`` world: task splits, corpus, tokenizer, tiny LM (notebook 02)
* :mod:`calirl_lite.users` — one user-simulator interface: scripted, LM-prompted (naive), LoRA (calibrated), endpoint
* :mod:`calirl_lite.chat`, :mod:`calirl_lite.decode`, :mod:`calirl_lite.rollout`, :mod:`calirl_lite.vllm_turns` — chat templates ↔ token ids, fast sampling, the rollout engine; vLLM turns
* :mod:`calirl_lite.calibration` — phase 1: real-user traces, LoRA SFT of the simulator, the sim-to-real gap (notebook 03)
* :mod:`calirl_lite.stages` — each stage's settings (``CalibrationConfig``, ``TrainConfig``) resolved once into a ``Stage``, and the contract between stages
* :mod:`calirl_lite.train`, :mod:`calirl_lite.trainer` — phase 2: GRPO (static, naive, calibrated, oracle) by one code path (notebook 04): a run's lifecycle; TRL's trainer wired for dialogue
* :mod:`calirl_lite.evaluate` — a policy's scores with a user on held-out goals
* :mod:`calirl_lite.results` — what runs leave behind, typed (``RunResult``, ``EvalResult``), the method labels, the paper's table and its claims judged (intervals, seeds)
* :mod:`calirl_lite.gap_study` — the simulator's behaviour gap against the drop of its score, next to the bound that fits the reward
* :mod:`calirl_lite.grpo` — the GRPO loss in one screen (a test checks it equals TRL's)
* :mod:`calirl_lite.stats` — users' behaviour statistics and their distance to the real users'
* :mod:`calirl_lite.dialogue` — ``Dialogue``, the currency between stages (JSON Lines, ``datasets``)
* :mod:`calirl_lite.inputs` — what the kit accepts from your files: one reader, one error naming file and line, size limits
* :mod:`calirl_lite.profiles`, :mod:`calirl_lite.tiny_models`, :mod:`calirl_lite.sources` — models and data per profile
* :mod:`calirl_lite.bench`, :mod:`calirl_lite.memory`, :mod:`calirl_lite.timeplan` — ``calirl bench …``; a GPU profile's memory and time plans, and time and peak memory of a block
* :mod:`calirl_lite.judge`, :mod:`calirl_lite.mathcheck` — an LLM judge of interactivity; math answers checked by math-verify
* :mod:`calirl_lite.reproduce`, :mod:`calirl_lite.pool`, :mod:`calirl_lite.notebook_runner` — the main job (``calirl reproduce``), its worker pool; ``calirl notebooks``
* :mod:`calirl_lite.colab`, :mod:`calirl_lite.exercises` — notebooks anywhere (the install cell, the runtime); checked exercises
* :mod:`calirl_lite.plots`, :mod:`calirl_lite.widgets` — figures, sliders and the dialogue inspector
* :mod:`calirl_lite.settings` — ``set_seed``, the run modes (full, ``CALIRL_CLASS``, ``CALIRL_SMOKE``), settings dataclasses
* :mod:`calirl_lite.env`, :mod:`calirl_lite.context` — the one place the environment is read (``context()``, at a job's entry), and the ``Context`` every stage is handed
* :mod:`calirl_lite.checkpoints` — resuming training exactly (never past the budget, never from a torn checkpoint)
* :mod:`calirl_lite.endpoints` — the HTTP client for OpenAI-compatible endpoints (endpoint users, LLM judges): one deadline a call, retries
* :mod:`calirl_lite.io`, :mod:`calirl_lite.paths`, :mod:`calirl_lite.quiet` — atomic writes and the line reader, where files go, library noise silenced
* :mod:`calirl_lite.cli` — the ``calirl`` command
"""

from .quiet import filter_library_warnings

filter_library_warnings()

from .settings import Settings, by_mode, class_mode, field_docs, run_mode, set_seed, smoke_mode  # noqa: E402 - after the filters

__version__ = "0.1.0"

__all__ = ["Settings", "by_mode", "class_mode", "field_docs", "run_mode", "set_seed", "smoke_mode", "__version__"]
