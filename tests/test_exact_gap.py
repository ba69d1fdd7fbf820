"""The exact per-turn gap: enumeration of a scripted user's replies, the TV against closed forms, an LM's scored
probabilities against its own samples, and the reply categories."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calirl_lite.dialogue import Message
from calirl_lite.exact_gap import OTHER, LMReplies, ScriptedReplies, enumerate_outcomes, exact_gap, reply_category, reply_distribution, user_turns
from calirl_lite.task_family import REAL_USER, ScriptedAssistant, ScriptedUser
from calirl_lite.tasks import CORPUS_ASSISTANTS, get_task
from calirl_lite.world import scripted_dialogue


def dialogues(task_name: str, n: int = 60, seed: int = 0, assistant: str = "sloppy", max_messages: int = 14):
    """Real-user dialogues with a scripted assistant that both asks and answers wrongly (no model needed)."""
    task, rng = get_task(task_name), np.random.default_rng(seed)
    out = []
    for i in range(n):
        goal = task.sample_goal(rng)
        user = ScriptedUser(task, goal, REAL_USER, np.random.default_rng([seed, i]))
        out.append(scripted_dialogue(task, goal, user, ScriptedAssistant(task, CORPUS_ASSISTANTS[assistant], np.random.default_rng([seed, i, 1])),
                                     max_messages))
    return out


def test_enumeration_gives_the_branch_probabilities():
    def run(draws):
        first = draws.random() < 0.3
        return f"{first}-{draws.choice('abc')}" if first else "no"

    dist, left = enumerate_outcomes(run)
    assert left == 0 and dist["no"] == pytest.approx(0.7) and dist["True-b"] == pytest.approx(0.1)
    assert sum(dist.values()) == pytest.approx(1.0)
    part, left = enumerate_outcomes(run, min_branch=0.2)  # the first path is followed whole; the other 0.1 branches are left out, and said to be
    assert left == pytest.approx(0.2) and sum(part.values()) + left == pytest.approx(1.0) and "True-b" not in part


@pytest.mark.parametrize("task_name", ["arith-chat", "docedit-chat"])
def test_the_enumerated_distribution_is_the_users_own(task_name):
    """Sampling the scripted user's reply many times from copies of its state gives the enumerated distribution."""
    d = next(d for d in dialogues(task_name) if len(user_turns(d)) >= 3)
    _, history, _ = user_turns(d)[2]
    dist, left = reply_distribution(get_task(task_name), d.goal, REAL_USER, history)
    assert left < 1e-3 and sum(dist.values()) + left == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    from calirl_lite.exact_gap import replay

    state = replay(get_task(task_name), d.goal, REAL_USER, history)
    n = 4000
    draws = [dataclasses.replace(state, rng=rng, told=dict(state.told)).reply(history[-1].text) for _ in range(n)]
    for text, p in dist.items():
        if p > 0.02:
            assert abs(draws.count(text) / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9, text
    assert set(draws) <= set(dist)


@pytest.mark.parametrize("task_name", ["arith-chat", "docedit-chat"])
def test_a_simulator_against_itself_has_no_gap(task_name):
    gap = exact_gap(ScriptedReplies(REAL_USER, "real"), REAL_USER, dialogues(task_name, 30))
    assert gap["total"] == pytest.approx(0.0, abs=1e-9) and max(gap["eps"]) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("task_name", ["arith-chat", "docedit-chat"])
def test_the_gap_of_a_changed_acceptance_is_its_closed_form(task_name):
    """Two scripted users that differ only in p_accept_wrong give the same replies in every other case, so at a history
    whose last turn is a wrong answer the TV is |a − b|, elsewhere 0: ε_t = |a − b| · P(turn t follows a wrong answer)."""
    task, ds = get_task(task_name), dialogues(task_name, 80)
    a, b = REAL_USER.p_accept_wrong, 0.6
    gap = exact_gap(ScriptedReplies(dataclasses.replace(REAL_USER, p_accept_wrong=b), "accepting"), REAL_USER, ds)
    turns = len(gap["eps"])
    follows_wrong = np.zeros((len(ds), turns))
    for i, d in enumerate(ds):
        for t, history, _ in user_turns(d):
            prev = task.parse_assistant(history[-1].text) if history else None
            follows_wrong[i, t] = prev is not None and prev.kind == "answer" and not task.answer_is_right(d.goal, prev)
    assert follows_wrong.sum() > 5  # the assistant does answer wrongly
    assert 0 <= gap["left_out"] < 1e-3  # the TV at a history is exact to within it (branches below MIN_BRANCH)
    np.testing.assert_allclose(gap["eps"], abs(a - b) * follows_wrong.mean(0), atol=gap["left_out"] + 1e-12, rtol=0)
    assert gap["total"] == pytest.approx(abs(a - b) * follows_wrong.sum(1).mean(), abs=turns * gap["left_out"] + 1e-12)
    # the mass sits where the two differ: accepting or rejecting a wrong answer
    assert all(c.startswith(("accepts a wrong answer", "rejects a wrong answer", "rejects and gives up"))
               for c, v in gap["by_category"].items() if sum(v) > 1e-4)


def test_the_interval_covers_the_sampling_of_histories():
    """ε_t is a mean over sampled dialogues: its interval shrinks with more of them and covers another sample's mean."""
    sim = ScriptedReplies(dataclasses.replace(REAL_USER, p_answer_when_asked=0.5), "reluctant")
    small, large = (exact_gap(sim, REAL_USER, dialogues("arith-chat", n, seed=s)) for n, s in ((40, 1), (160, 2)))
    assert small["total_error"] > large["total_error"] > 0
    assert abs(small["total"] - large["total"]) < 1.5 * (small["total_error"] + large["total_error"])


def test_categories_name_what_a_reply_does():
    task = get_task("arith-chat")
    goal = {"a": 3, "b": 4, "op": "plus"} if "op" in task.slots else None
    ds = dialogues("arith-chat", 40)
    seen = set()
    for d in ds:
        for _, history, reply in user_turns(d):
            seen.add(reply_category(task, d.goal, history, reply))
    assert {"opening: states none", "answers the question"} <= seen
    assert any(c.startswith("rejects a wrong answer") for c in seen) and "accepts a right answer" in seen
    assert goal is None or reply_category(task, goal, [], "") == "opening: states none"


def test_a_history_must_end_with_the_assistant():
    d = dialogues("arith-chat", 1)[0]
    with pytest.raises(ValueError, match="assistant turn"):
        reply_distribution(get_task("arith-chat"), d.goal, REAL_USER, d.messages[:1])


def test_the_gap_needs_the_toy_worlds_users():
    from calirl_lite.dialogue import Dialogue

    with pytest.raises(ValueError, match="scripted users"):
        exact_gap(ScriptedReplies(REAL_USER), REAL_USER, [Dialogue("math-chat", "0", {"answer": "1"}, [Message("user", "hi")])])
    with pytest.raises(ValueError, match="no dialogues"):
        exact_gap(ScriptedReplies(REAL_USER), REAL_USER, [])


def test_an_lms_scored_probabilities_are_its_sampling_frequencies(world):
    """LMReplies scores a reply as the decoder writes it: over many samples at one history, each frequent reply's
    share matches its scored probability, and the replies' probabilities sum to at most 1."""
    from calirl_lite.profiles import get_profile

    prof = get_profile("tiny")
    model, tok = world.load_model()
    task = get_task("arith-chat")
    d = dialogues("arith-chat", 1)[0]
    history = user_turns(d)[1][1]
    sim = LMReplies(model, tok, prof.user_prompt_style, 1.0, 12)
    n = 600
    drawn = sim.sample(task, [(d.goal, history)], n, seed=0)[0]
    top = sorted(set(drawn), key=drawn.count, reverse=True)[:4]
    probs = sim.probabilities(task, [(d.goal, history, sorted(set(drawn)))])[0]
    assert sum(probs) <= 1 + 1e-6
    scored = dict(zip(sorted(set(drawn)), probs))
    for y in top:
        p = scored[y]
        assert abs(drawn.count(y) / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 0.01, (y, p, drawn.count(y) / n)


def test_an_lms_mass_outside_the_real_replies_counts_in_full(world):
    """A reply the real users never give is TV mass in full: the gap of the world's LM at a history is at least the
    mass it puts outside the real users' replies."""
    from calirl_lite.profiles import get_profile

    prof = get_profile("tiny")
    model, tok = world.load_model()
    ds = dialogues("arith-chat", 6)
    gap = exact_gap(LMReplies(model, tok, prof.user_prompt_style, 1.0, prof.max_new_tokens, "world LM"), REAL_USER, ds)
    assert 0 < gap["total"] <= sum(gap["alive"]) + 1e-9
    assert all(0 <= e <= 1 for e in gap["eps"]) and OTHER in gap["by_category"]
    assert sum(sum(v) for v in gap["by_category"].values()) == pytest.approx(gap["total"])


def test_a_corrected_simulator_has_no_gap_where_it_is_corrected():
    """HybridReplies takes the real users' replies in the contexts it corrects: a scripted simulator that accepts wrong
    answers, corrected at wrong answers, has no gap there (and the gap it had was all there)."""
    from calirl_lite.exact_gap import HybridReplies

    ds = dialogues("arith-chat", 60)
    wrong = ScriptedReplies(dataclasses.replace(REAL_USER, p_accept_wrong=0.7, reveal_first=0.5), "two errors")
    before = exact_gap(wrong, REAL_USER, ds)
    assert before["by_context"].get("wrong answer", 0) > 0.05 and before["by_context"].get("opening", 0) > 0.05
    after = exact_gap(HybridReplies(wrong, ("wrong answer",), REAL_USER, "corrected"), REAL_USER, ds)
    assert after["by_context"].get("wrong answer", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert after["by_context"]["opening"] == pytest.approx(before["by_context"]["opening"])
    assert after["total"] == pytest.approx(before["total"] - before["by_context"]["wrong answer"])


def test_a_hybrid_user_replies_as_the_real_users_in_its_contexts():
    """The HybridUser the rollout engine plays: in a corrected context its reply is the scripted user's, elsewhere the
    other user's (here a scripted one that never answers questions)."""
    from calirl_lite.users import HybridUser, ScriptedUsers, UserState, reply_context

    task, d = get_task("arith-chat"), dialogues("arith-chat", 1, assistant="sloppy")[0]
    mute = ScriptedUsers(dataclasses.replace(REAL_USER, p_answer_when_asked=0.0, p_unprompted_reveal=0.0))
    hybrid = HybridUser(mute, ("question",))
    turns = [(h, y) for _, h, y in user_turns(d) if h and reply_context(task, d.goal, h) == "question"]
    assert turns
    history, _ = turns[0]
    states = [UserState(task, d.goal, np.random.default_rng(i)) for i in range(40)]
    replies = hybrid.replies(states, [history] * len(states))
    assert any(task.parse_user(r) for r in replies)  # the real users answer a question (p 0.95); the mute user never does
    with pytest.raises(ValueError, match="contexts to correct"):
        HybridUser(mute, ("answers",))


def test_fit_persona_recovers_a_scripted_users_behaviours():
    """Fitted to a scripted user's own dialogues, fit_persona gives back its behaviours (within sampling error; the
    share of rejections that name a detail reads high where users volunteer details in the same turn)."""
    from calirl_lite.stats import fit_persona, persona_spec
    from calirl_lite.users import persona_from_spec

    truth = persona_from_spec("sycophantic:0.5,p_unprompted_reveal=0.3,reveal_first=0.3,p_mistake=0.2,patience=2")
    task, rng = get_task("arith-chat"), np.random.default_rng(0)
    ds = []
    for i in range(800):
        goal = task.sample_goal(rng)
        ds.append(scripted_dialogue(task, goal, ScriptedUser(task, goal, truth, np.random.default_rng([3, i])),
                                    ScriptedAssistant(task, CORPUS_ASSISTANTS["sloppy"], np.random.default_rng([3, i, 1])), 14))
    fitted = fit_persona(ds)
    for name in ("reveal_first", "p_answer_when_asked", "p_unprompted_reveal", "p_mistake", "p_accept_wrong"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=0.05), name
    assert fitted.patience == truth.patience
    spec = persona_spec(fitted)
    assert persona_from_spec(spec) == dataclasses.replace(fitted, name=spec)
