"""Benchmarks that print their figures (speed goals live here, not in timed tests).

``calirl bench rollout``: tokens per second, all on the same model, of

* the batched rollout engine (whole dialogues, all in lock step);
* plain batched ``generate`` of single turns on the same first prompts, each row stopping at
  its turn end as a dialogue turn does, repeated until it has sampled as many tokens as the
  engine (``generate_tok_s``); and, as an upper bound no dialogue reaches, one ``generate``
  call in which every row runs the full length without stopping (``generate_fixed_length_tok_s``);
* a naive loop that runs one dialogue at a time through the same engine.
"""

from __future__ import annotations

import time
from typing import Any


def bench_rollout(profile: str = "tiny", task: str = "arith-chat", n_dialogues: int = 32, n_naive: int = 8,
                  max_messages: int = 8, max_new_tokens: int = 24, user: str = "naive", seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """Measure the three rates (engine and generate: median of ``repeats`` runs); returns
    ``engine_tok_s``, ``generate_tok_s``, ``naive_tok_s``, the upper bound and the ratios."""
    import statistics

    import torch

    from .chat import generate
    from .profiles import get_profile
    from .rollout import base_policy, rollout, rollout_one_at_a_time
    from .tasks import get_task
    from .users import LMUser, ScriptedUsers
    from .world import WorldConfig, build_world

    prof = get_profile(profile)
    get_task(task)
    if user not in ("naive", "real"):
        raise ValueError(f"user must be 'naive' (the LM plays the user) or 'real' (scripted), got {user!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    goals = [t["goal"] for t in build_world(WorldConfig.make()).tasks(task, "test")]
    goals = (goals * (n_dialogues // max(1, len(goals)) + 1))[:n_dialogues]
    policy = base_policy(profile, max_new_tokens)
    model, tok = policy.model, policy.tokenizer
    sim = LMUser(model, tok, max_new_tokens=max_new_tokens, prompt_style=prof.user_prompt_style) if user == "naive" else ScriptedUsers()
    rollout(policy, sim, task, goals[:2], max_messages, seed=seed)  # warm-up
    engine_rates, generate_rates, fixed_rates, engine_tokens = [], [], [], []
    for r in range(repeats):
        engine = rollout(policy, sim, task, goals, max_messages, seed=seed + r)
        engine_rates.append(engine.generated_tokens / engine.seconds)
        engine_tokens.append(engine.generated_tokens)
        # Plain batched generate of single turns on the same prompts (stopping at the turn end, as a
        # dialogue turn does), repeated until it has sampled as many tokens as the engine did.
        start, gen_tokens = time.perf_counter(), 0
        while gen_tokens < engine.generated_tokens:
            outs = generate(model, tok, engine.prompt_ids, max_new_tokens, prof.policy_temperature)
            gen_tokens += sum(len(o.ids) - int(o.forced_end) for o in outs)
        generate_rates.append(gen_tokens / (time.perf_counter() - start))
        # The same, with no turn ends at all (every row runs the full length): an upper bound no dialogue reaches.
        per_seq = max(1, round(engine.generated_tokens / len(goals)))
        start = time.perf_counter()
        generate(model, tok, engine.prompt_ids, per_seq, prof.policy_temperature, min_new_tokens=per_seq)
        fixed_rates.append(per_seq * len(goals) / (time.perf_counter() - start))
    naive = rollout_one_at_a_time(policy, sim, task, goals[:n_naive], max_messages, seed=seed)
    result = {
        "profile": profile, "task": task, "user": user, "n_dialogues": len(goals), "n_naive": n_naive, "max_messages": max_messages,
        "max_new_tokens": max_new_tokens, "repeats": repeats, "threads": torch.get_num_threads(),
        "engine_tokens": int(statistics.median(engine_tokens)),
        "engine_tok_s": statistics.median(engine_rates),
        "generate_tok_s": statistics.median(generate_rates),
        "generate_fixed_length_tok_s": statistics.median(fixed_rates),
        "naive_tok_s": naive.generated_tokens / naive.seconds,
        "engine_vs_generate_each_run": [e / g for e, g in zip(engine_rates, generate_rates)],
    }
    result["engine_vs_generate"] = result["engine_tok_s"] / result["generate_tok_s"]
    result["engine_vs_naive"] = result["engine_tok_s"] / result["naive_tok_s"]
    return result


def bench_train(profile: str = "tiny", task: str = "arith-chat", steps: int = 6, prompts_per_step: int = 4, group_size: int = 8,
                user: str = "real", seed: int = 0) -> dict[str, Any]:
    """GRPO steps/s and tokens/s of ``calirl train``'s code path, single-turn and multi-turn.

    *single-turn*: a message budget of 2 (the user's first message, one policy turn) — plain GRPO;
    *multi-turn*: the world's budget (14 messages), user turns masked out of the loss.
    Each is timed from the end of its first step (warm-up) to the end of its last; ``policy_tok_s``
    counts the tokens the policy wrote and trained on (env_mask 1), ``all_tok_s`` every token of the
    training sequences (prompt, policy and user), ``rollout_share`` the part of the time spent in rollouts.
    """
    import tempfile

    import torch
    from transformers import TrainerCallback

    from .train import SIMULATOR, TrainConfig, check_inputs, make_trainer, make_user, training_starts
    from .world import WorldConfig, build_world

    if steps < 2:
        raise ValueError(f"steps must be ≥ 2 (the first is a warm-up), got {steps}")
    method = {"real": "oracle", "naive": "naive"}.get(user)
    if method is None:
        raise ValueError(f"user must be 'real' (scripted) or 'naive' (the LM plays the user), got {user!r}")
    world = build_world(WorldConfig.make())
    result: dict[str, Any] = {"profile": profile, "task": task, "user": user, "steps": steps, "prompts_per_step": prompts_per_step,
                              "group_size": group_size, "threads": torch.get_num_threads()}

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.tokens: list[int] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())
            self.tokens.append(int(state.num_input_tokens_seen))

    for name, budget in (("single_turn", 2), ("multi_turn", world.config.max_messages)):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(method=method, profile=profile, task=task, seed=seed, steps=steps, prompts_per_step=prompts_per_step,
                              group_size=group_size, max_messages=budget, save_steps=steps + 1, out_dir=tmp)
            need = check_inputs(cfg)
            clock = Clock()
            trainer, stats = make_trainer(cfg, training_starts(cfg, need, world), make_user(SIMULATOR[method], profile), [clock])
            trainer.train()
        seconds = clock.ends[-1] - clock.ends[0]
        timed = slice(1, None)  # the steps after the warm-up
        result[name] = {
            "max_messages": budget, "steps_per_s": (len(clock.ends) - 1) / seconds,
            "policy_tok_s": sum(stats.policy_tokens[timed]) / seconds, "all_tok_s": (clock.tokens[-1] - clock.tokens[0]) / seconds,
            "rollout_share": sum(stats.seconds[timed]) / seconds,
            "policy_tokens_per_dialogue": sum(stats.policy_tokens[timed]) / ((steps - 1) * prompts_per_step * group_size),
        }
    return result

