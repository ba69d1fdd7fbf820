"""Interactive widgets of the notebooks (ipywidgets). Each redraws from package functions only."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .calibration import sample_user_turn
from .plots import plot_reward_curves, plot_shift, plot_shift_over_time, plot_turn_profiles
from .rollout import rollout
from .shift import ShiftConfig, run_shift, shift_over_time
from .stats import turn_profile
from .tasks import get_task


class ShiftExplorer:
    """Sliders for ε, δ and the largest horizon H that redraw notebook 01's gap-vs-H curves.

    ``explorer.result`` holds the sweep behind the current picture, so the sliders can be
    driven from code (and tests) as well as by hand.
    """

    horizon_label = "max H"

    def __init__(self, cfg: ShiftConfig, horizon: int | None = None) -> None:
        import ipywidgets as w

        self.cfg = cfg
        self.eps = w.FloatLogSlider(value=self.cfg.eps, base=10, min=-4, max=-1, step=0.1, description="ε", readout_format=".4f",
                                    continuous_update=False)
        self.delta = w.FloatLogSlider(value=self.cfg.delta, base=10, min=-4, max=-1, step=0.1, description="δ", readout_format=".4f",
                                      continuous_update=False)
        self.horizon = w.IntSlider(value=horizon or max(self.cfg.horizons), min=4, max=200, step=1, description=self.horizon_label,
                                  continuous_update=False)  # each redraw computes the shift again: on release, not at every step of a drag
        self.out = w.Output()
        self.result: dict[str, Any] = {}
        for slider in (self.eps, self.delta, self.horizon):
            slider.observe(lambda _change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.eps, self.delta, self.horizon]), self.out])
        self.redraw()

    def horizons(self) -> tuple[int, ...]:
        """Eight horizons spread evenly on a log scale from 2 to the slider's max H."""
        return tuple(sorted({int(h) for h in np.geomspace(2, self.horizon.value, 8).round()}))

    def compute(self, cfg: ShiftConfig) -> dict[str, Any]:
        return run_shift(dataclasses.replace(cfg, horizons=self.horizons()))

    def figure(self, result: dict[str, Any]) -> Any:
        return plot_shift(result)

    def redraw(self) -> None:
        """Recompute for the current slider values and redraw the figure."""
        import matplotlib.pyplot as plt

        self.result = self.compute(dataclasses.replace(self.cfg, eps=float(self.eps.value), delta=float(self.delta.value)))
        with self.out:
            self.out.clear_output(wait=True)
            fig = self.figure(self.result)
            plt.show()
        plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class ShiftOverTime(ShiftExplorer):
    """The same sliders, redrawing distribution shift step by step at horizon H: each learner's TV(d_t, d̂_t) per
    step and its state visitation over time (:func:`calirl_lite.shift.shift_over_time`)."""

    horizon_label = "H"

    def compute(self, cfg: ShiftConfig) -> dict[str, Any]:
        return shift_over_time(cfg, self.horizon.value)

    def figure(self, result: dict[str, Any]) -> Any:
        return plot_shift_over_time(result)


class TurnByTurn:
    """Sets of dialogues of one task (e.g. Static's logged contexts and its own rollouts with the real users), turn by
    turn: a slider (and a play button) over the assistant turn redraws how far the contexts, the policy's actions and
    the users' replies of each set have drifted apart at that turn (:func:`calirl_lite.stats.turn_profile`)."""

    def __init__(self, sets: dict[str, Any], max_turns: int = 7) -> None:
        import ipywidgets as w

        if not sets:
            raise ValueError("TurnByTurn needs at least one set of dialogues")
        self.profiles = {name: turn_profile(dialogues, max_turns) for name, dialogues in sets.items()}
        self.turn = w.IntSlider(value=0, min=0, max=max_turns - 1, description="turn")
        self.play = w.Play(value=0, min=0, max=max_turns - 1, interval=1200, description="play")
        w.jslink((self.play, "value"), (self.turn, "value"))
        self.out = w.Output()
        self.turn.observe(lambda _change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.play, self.turn]), self.out])
        self.redraw()

    def redraw(self) -> None:
        import matplotlib.pyplot as plt

        with self.out:
            self.out.clear_output(wait=True)
            fig = plot_turn_profiles(self.profiles, self.turn.value)
            plt.show()
        plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def shift_explorer(cfg: ShiftConfig) -> ShiftExplorer:
    """Show sliders for ε, δ and H that redraw the compounding-shift curves (notebook 01)."""
    return ShiftExplorer(cfg)


def dialogue_html(dialogue: Any, upto: int | None = None) -> str:
    """A dialogue as HTML: hidden goal on top, user turns left in blue, assistant turns right in green, scores below."""
    import html

    msgs = dialogue.messages[: upto if upto is not None else len(dialogue.messages)]
    goal = html.escape(", ".join(f"{k}: {v}" for k, v in dialogue.goal.items()))
    rows = [f"<div style='font-size:85%;color:#555;margin-bottom:6px'><b>hidden goal</b> (only the user sees it) — {goal}</div>"]
    for m in msgs:
        user = m.role == "user"
        style = ("background:#e3f0ff;margin-right:25%;" if user else "background:#e6f7e6;margin-left:25%;text-align:right;")
        rows.append(f"<div class='calirl-{m.role}' style='{style}padding:4px 8px;border-radius:8px;margin:3px 0'>"
                    f"<b>{'user (' + html.escape(dialogue.user) + ')' if user else 'assistant (' + html.escape(dialogue.policy) + ')'}</b>: {html.escape(m.text)}</div>")
    status = "ended by the user" if dialogue.terminated else "stopped at the message budget"
    shown = f"{len(msgs)} of {len(dialogue.messages)} messages"
    scores = ", ".join(f"{k} {v:.3g}" for k, v in dialogue.scores.items())
    rows.append(f"<div style='font-size:85%;margin-top:6px'>{shown} · {status} · <b>scores</b>: {html.escape(scores)}</div>")
    return "<div class='calirl-dialogue' style='font-family:sans-serif;max-width:760px'>" + "".join(rows) + "</div>"


class DialogueInspector:
    """Pick task, policy, user and seed; step through the dialogue turn by turn.

    ``policies`` and ``users`` map names to :class:`~calirl_lite.rollout.Policy` and
    :class:`~calirl_lite.users.User`; ``goals`` maps each task to its (test) goals.
    """

    def __init__(self, policies: dict[str, Any], users: dict[str, Any], goals: dict[str, list[dict[str, Any]]], max_messages: int = 14) -> None:
        import ipywidgets as w

        self.policies, self.users, self.goals, self.max_messages = policies, users, goals, max_messages
        self.task = w.Dropdown(options=list(goals), description="task")
        self.policy = w.Dropdown(options=list(policies), description="policy")
        self.user = w.Dropdown(options=list(users), description="user")
        self.seed = w.IntText(value=0, description="seed", layout=w.Layout(width="160px"))
        self.prev_button = w.Button(description="◀ prev")
        self.next_button = w.Button(description="next ▶")
        self.all_button = w.Button(description="whole dialogue")
        self.view = w.HTML()
        self.dialogue: Any = None
        self.step = 0
        for control in (self.task, self.policy, self.user, self.seed):
            control.observe(lambda _c: self.load(), names="value")
        self.prev_button.on_click(lambda _b: self.show(self.step - 1))
        self.next_button.on_click(lambda _b: self.show(self.step + 1))
        self.all_button.on_click(lambda _b: self.show(len(self.dialogue.messages)))
        self.widget = w.VBox([w.HBox([self.task, self.policy]), w.HBox([self.user, self.seed]),
                              w.HBox([self.prev_button, self.next_button, self.all_button]), self.view])
        self.load()

    def load(self) -> None:
        """Run the dialogue for the current choices (goal number = seed) and show its first message."""

        goals = self.goals[self.task.value]
        seed = int(self.seed.value)
        goal = goals[seed % len(goals)]
        batch = rollout(self.policies[self.policy.value], self.users[self.user.value], get_task(self.task.value), [goal], self.max_messages, seed=seed)
        self.dialogue = batch.dialogues[0]
        self.dialogue.policy = self.policy.value
        self.show(1)

    def show(self, step: int) -> None:
        """Show the first ``step`` messages (clipped to the dialogue)."""
        self.step = max(1, min(step, len(self.dialogue.messages)))
        self.view.value = dialogue_html(self.dialogue, self.step)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class SideBySideInspector:
    """Two policies on the same task, user, goal and seed, side by side (notebook 05's case studies).

    Task, user and seed are shared (changing one changes both dialogues); each side picks its policy;
    the step buttons move both dialogues together.
    """

    def __init__(self, policies: dict[str, Any], users: dict[str, Any], goals: dict[str, list[dict[str, Any]]],
                 left: str | None = None, right: str | None = None, max_messages: int = 14) -> None:
        import ipywidgets as w

        names = list(policies)
        left, right = left or names[0], right or names[min(1, len(names) - 1)]
        for side, name in (("left", left), ("right", right)):
            if name not in policies:
                raise ValueError(f"{side}={name!r} is not one of the policies: {', '.join(names)}")
        self.left = DialogueInspector(policies, users, goals, max_messages)
        self.right = DialogueInspector(policies, users, goals, max_messages)
        self.left.policy.value, self.right.policy.value = left, right
        self.left.policy.description, self.right.policy.description = "left", "right"
        for name in ("task", "user", "seed"):
            w.link((getattr(self.left, name), "value"), (getattr(self.right, name), "value"))
        sides = (self.left, self.right)
        self.prev_button = w.Button(description="◀ prev")
        self.next_button = w.Button(description="next ▶")
        self.all_button = w.Button(description="whole dialogues")
        self.prev_button.on_click(lambda _b: [s.show(s.step - 1) for s in sides])
        self.next_button.on_click(lambda _b: [s.show(s.step + 1) for s in sides])
        self.all_button.on_click(lambda _b: [s.show(len(s.dialogue.messages)) for s in sides])
        half = w.Layout(width="50%")
        self.left.view.layout, self.right.view.layout = half, half
        self.widget = w.VBox([w.HBox([self.left.task, self.left.user, self.left.seed]), w.HBox([self.left.policy, self.right.policy]),
                              w.HBox([self.prev_button, self.next_button, self.all_button]), w.HBox([self.left.view, self.right.view])])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class TurnComparer:
    """At the same context of a held-out dialogue: the real user's turn, and what each simulator says there.

    ``simulators`` maps names to (model, tokenizer); ``style`` is the user prompt style of the profile.
    """

    def __init__(self, heldout: list[Any], simulators: dict[str, tuple[Any, Any]], style: str) -> None:
        import ipywidgets as w

        self.heldout, self.simulators, self.style = heldout, simulators, style
        self.dialogue = w.IntSlider(value=0, min=0, max=len(heldout) - 1, description="dialogue", continuous_update=False)
        self.turn = w.IntSlider(value=1, min=0, max=1, description="user turn", continuous_update=False)  # each samples the simulators
        self.resample = w.Button(description="sample again")
        self.view = w.HTML()
        self.seed = 0
        self.dialogue.observe(lambda _c: self._reset_turns(), names="value")
        self.turn.observe(lambda _c: self.show(), names="value")
        self.resample.on_click(lambda _b: self._again())
        self.widget = w.VBox([w.HBox([self.dialogue, self.turn, self.resample]), self.view])
        self._reset_turns()

    def user_turns(self) -> list[int]:
        d = self.heldout[self.dialogue.value]
        return [k for k, m in enumerate(d.messages) if m.role == "user"]

    def _reset_turns(self) -> None:
        self.turn.max = max(0, len(self.user_turns()) - 1)
        self.turn.value = min(1, self.turn.max)
        self.show()

    def _again(self) -> None:
        self.seed += 1
        self.show()

    def compare(self) -> dict[str, str]:
        """The real user's turn and each simulator's, at the chosen context."""

        d = self.heldout[self.dialogue.value]
        k = self.user_turns()[self.turn.value]
        out = {"real": d.messages[k].text}
        for name, (model, tok) in self.simulators.items():
            out[name] = sample_user_turn(model, tok, d, k, self.style, seed=self.seed)
        return out

    def show(self) -> None:
        import html

        d = self.heldout[self.dialogue.value]
        k = self.user_turns()[self.turn.value]
        context = "".join(f"<div style='color:#555'><b>{m.role}</b>: {html.escape(m.text)}</div>" for m in d.messages[:k]) or "<i>(the first message)</i>"
        rows = "".join(
            f"<tr><td style='padding:2px 8px'><b>{html.escape(name)}</b></td><td style='padding:2px 8px;background:#e3f0ff'>{html.escape(text)}</td></tr>"
            for name, text in self.compare().items()
        )
        self.view.value = f"<div style='font-family:sans-serif;max-width:760px'>{context}<table style='margin-top:6px'>{rows}</table></div>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class LiveRewardCurves:
    """A trainer callback that redraws the reward curves of every run it has watched, as they train.

    Pass ``live.callback(name)`` to ``train(..., callbacks=[…])``; each logged step adds a point to
    the curve ``name`` and the figure in ``live.out`` (an ipywidgets Output) is redrawn. Outside a
    notebook it only collects the logs (``live.logs``).
    """

    def __init__(self, metric: str, title: str = "", every: int = 2) -> None:
        import ipywidgets as w

        self.metric, self.title, self.every = metric, title, max(1, every)
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.out = w.Output()
        self.widget = self.out

    def callback(self, name: str) -> Any:
        """The ``transformers.TrainerCallback`` that feeds the curve ``name``."""
        from transformers import TrainerCallback

        live = self
        live.logs[name] = []

        class _Feed(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
                if logs and "reward" in logs:
                    live.logs[name].append({"step": state.global_step, **logs})
                    if len(live.logs[name]) % live.every == 0 or state.global_step >= state.max_steps:
                        live.redraw()

        return _Feed()

    def redraw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = plot_reward_curves(self.logs, self.metric, self.title)
        with self.out:
            self.out.clear_output(wait=True)
            display(fig)
        plt.close(fig)
