"""Notebook 01's theory: exact evaluation, the learners, the three gaps and their bounds."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calirl_lite import shift

# ----------------------------------------------------------------------------- property tests


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_states=st.integers(1, 6),
    n_actions=st.integers(1, 4),
    sparsity=st.floats(0, 0.9),
    H=st.integers(1, 25),
    eps=st.floats(0, 1),
    delta=st.floats(0, 1),
)
def test_every_gap_is_below_its_bound_on_random_mdps(seed, n_states, n_actions, sparsity, H, eps, delta):
    rng = np.random.default_rng(seed)
    mdp = shift.random_mdp(rng, n_states, n_actions, sparsity)
    gaps = shift.policy_shift_gaps(mdp, H, eps)
    sim = shift.simulator_shift_gap(mdp, shift.random_simulator(rng, mdp, delta), H)
    for name, g in [("static", gaps["static"]), ("interactive", gaps["interactive"]), ("simulator", sim)]:
        assert -1e-9 <= g.gap <= g.bound + 1e-9, (name, g)
    # the bound with the learner's nominal ε can only be larger than with the measured errors
    assert gaps["static"].bound <= shift.compounding_bound(eps, H, mdp.r_max) + 1e-9


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), H=st.integers(1, 20))
def test_exact_value_matches_bellman_backup_of_optimal_policy(seed, H):
    rng = np.random.default_rng(seed)
    mdp = shift.random_mdp(rng, 4, 3, 0.5)
    pi = shift.optimal_policy(mdp, H)
    # V* by an independent backward recursion over Q-values
    v = np.zeros(mdp.n_states)
    for _ in range(H):
        v = (mdp.R + mdp.P @ v).max(axis=1)
    assert shift.value(mdp, pi) == pytest.approx(float(mdp.mu @ v), abs=1e-9)
    # no random deterministic policy beats it
    for _ in range(5):
        other = np.eye(mdp.n_actions)[rng.integers(mdp.n_actions, size=(H, mdp.n_states))]
        assert shift.value(mdp, other) <= shift.value(mdp, pi) + 1e-9


# ----------------------------------------------------------------------------- the bound


def test_bound_is_r_max_eps_h_h_plus_1_over_2_for_constant_eps():
    assert shift.compounding_bound(0.1, H=10, r_max=2.0) == pytest.approx(2.0 * 0.1 * 10 * 11 / 2)
    assert shift.compounding_bound([0.1, 0.0, 0.3], r_max=1.0) == pytest.approx(3 * 0.1 + 2 * 0.0 + 1 * 0.3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"errors": 0.1, "H": 0}, "H"),
        ({"errors": -0.1, "H": 3}, "eps"),
        ({"errors": 1.5, "H": 3}, "eps"),
        ({"errors": [0.1, float("nan")]}, "eps"),
        ({"errors": 0.1, "H": 3, "r_max": -1.0}, "r_max"),
        ({"errors": [0.1, 0.2], "H": 3}, "H"),
        ({"errors": 0.1}, "H is required"),
    ],
)
def test_bound_rejects_bad_settings_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        shift.compounding_bound(**kwargs)


def test_bound_names_delta_for_a_simulator():
    with pytest.raises(ValueError, match="delta"):
        shift.compounding_bound([2.0], name="delta")


# ----------------------------------------------------------------------------- the MDP and its checks


def test_rows_that_do_not_sum_to_one_are_rejected_with_their_index():
    P = np.full((2, 1, 2), 0.5)
    P[1, 0] = [0.7, 0.7]
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] sums to 1.4"):
        shift.TabularMDP(P, np.zeros((2, 1)), np.array([1.0, 0.0]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"R": np.array([[-1.0], [0.0]])}, r"R\[0, 0\]"),
        ({"r_max": -1.0}, "r_max"),
        ({"mu": np.array([0.5, 0.6])}, "mu"),
        ({"P": np.array([[[1.5, -0.5]], [[0.0, 1.0]]])}, r"P\[0, 0, 1\]"),
        ({"R": np.zeros((3, 1))}, "R must have shape"),
    ],
)
def test_malformed_mdps_are_rejected(change, message):
    base = {"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 1)), "mu": np.array([1.0, 0.0])}
    with pytest.raises(ValueError, match=message):
        shift.TabularMDP(**{**base, **change})


def test_nothing_is_silently_clipped():
    with pytest.raises(ValueError, match="eps"):
        shift.static_learner(shift.dialogue_chain(), shift.optimal_policy(shift.dialogue_chain(), 3), eps=1.01)
    with pytest.raises(ValueError, match="offscript_rates"):
        shift.dialogue_chain([0.5, -0.1])
    with pytest.raises(ValueError, match="horizons"):
        shift.ShiftConfig(horizons=(5, 0))
    with pytest.raises(ValueError, match="delta"):
        shift.ShiftConfig(delta=-0.01)
    with pytest.raises(ValueError, match="r_max"):
        shift.ShiftConfig(r_max=-1)


def test_state_distributions_are_distributions_and_match_monte_carlo():
    rng = np.random.default_rng(0)
    mdp = shift.random_mdp(rng, 5, 3, 0.3)
    pi = shift.static_learner(mdp, shift.optimal_policy(mdp, 12), eps=0.3)
    d = shift.state_distributions(mdp, pi)
    assert np.allclose(d.sum(axis=1), 1.0)
    mean, se = shift.monte_carlo_value(mdp, pi, 20_000, rng)
    assert abs(mean - shift.value(mdp, pi)) < 5 * se


# ----------------------------------------------------------------------------- the dialogue chain


@pytest.mark.parametrize("H", [1, 2, 7, 30])
def test_static_gap_on_the_chain_has_its_closed_form(H):
    """Without off-script users the static learner stays on script with probability (1 − ε)^t."""
    eps = 0.05
    chain = shift.dialogue_chain([])
    gaps = shift.policy_shift_gaps(chain, H, eps)
    closed = sum(1 - (1 - eps) ** (t + 1) for t in range(H))
    assert gaps["static"].gap == pytest.approx(closed, abs=1e-12)
    assert gaps["static"].bound == pytest.approx(eps * H * (H + 1) / 2)


def test_interactive_learner_recovers_and_static_learner_does_not():
    chain = shift.dialogue_chain([0.01])
    expert = shift.optimal_policy(chain, 10)
    static = shift.static_learner(chain, expert, eps=0.1)
    inter = shift.interactive_learner(chain, expert, eps=0.1)
    derailed, recover, script = 1, 1, 0
    assert static[5, derailed, script] == 1.0  # never saw a derailed dialogue: falls back on the script
    assert inter[5, derailed, recover] == pytest.approx(0.9)
    assert shift.value(chain, inter) > shift.value(chain, static)


def test_simulator_tv_is_the_rate_of_behaviours_it_misses():
    rates = [0.01, 0.02, 0.03]
    real = shift.dialogue_chain(rates)
    for covered, missing in [(0, 0.06), (1, 0.05), (2, 0.03), (3, 0.0)]:
        sim = shift.chain_simulator(rates, covered)
        assert shift.tv(real.P, sim.P).max() == pytest.approx(missing)
    assert shift.simulator_shift_gap(real, shift.chain_simulator(rates, 3), 20).gap == pytest.approx(0.0, abs=1e-12)


def test_default_sweep_shows_h_squared_for_static_and_simulator_and_h_for_interactive():
    result = shift.run_shift(shift.ShiftConfig())
    s = result["slopes"]
    assert 1.8 <= s["static"] <= 2.2
    assert 0.9 <= s["interactive"] <= 1.1
    assert 1.8 <= s["simulator"] <= 2.2
    assert 1.8 <= s["simulator_calibrated"] <= 2.2
    for row in result["per_horizon"]:
        assert row["gap_static"] > row["gap_interactive"]
        assert row["gap_simulator_calibrated"] < row["gap_simulator"]  # calibration shrinks the gap
        for key in ("static", "interactive", "simulator", "simulator_calibrated"):
            assert 0 <= row[f"gap_{key}"] <= row[f"bound_{key}"]


def test_simulator_gap_grows_with_delta():
    small = shift.run_shift(shift.ShiftConfig(horizons=(10, 20), delta=0.001))
    large = shift.run_shift(shift.ShiftConfig(horizons=(10, 20), delta=0.004))
    for a, b in zip(small["per_horizon"], large["per_horizon"]):
        assert b["gap_simulator"] > 3 * a["gap_simulator"]


def test_loglog_slope():
    assert shift.loglog_slope([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)
    assert np.isnan(shift.loglog_slope([1, 2], [0.0, 1.0]))
    with pytest.raises(ValueError, match="two different horizons"):
        shift.loglog_slope([3, 3], [1.0, 2.0])


def test_run_shift_writes_json_png_and_config(tmp_path):
    cfg = shift.ShiftConfig(horizons=(5, 10))
    shift.run_shift(cfg, out=tmp_path)
    import json

    data = json.loads((tmp_path / "shift.json").read_text())
    assert [r["H"] for r in data["per_horizon"]] == [5, 10]
    for key in ("gap_static", "gap_interactive", "gap_simulator", "bound_static", "bound_simulator", "eps", "delta"):
        assert key in data["per_horizon"][0]
    assert (tmp_path / "shift.png").read_bytes()[:4] == b"\x89PNG"
    assert shift.ShiftConfig.load(tmp_path / "config.json") == cfg


def test_random_mdp_check_reports_no_violation(tmp_path):
    cfg = dataclasses.replace(shift.ShiftConfig(), n_random_mdps=30)
    cases, summary = shift.run_random_mdps(cfg, out=tmp_path)
    assert len(cases) == 30 and summary["n_cases"] == 30
    assert all(summary[k]["violations"] == 0 for k in ("static", "interactive", "simulator"))
    assert (tmp_path / "random_mdps.png").exists()


def test_monte_carlo_study_brackets_the_exact_gap():
    study = shift.monte_carlo_gap_study(shift.ShiftConfig(eps=0.05), H=10, n_episodes=[20_000])
    assert abs(study["estimate"][0] - study["exact"]) < 5 * study["stderr"][0]
