"""BayesianOptimizationOracle and its numpy Gaussian process."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import hpstore
from hpstore.oracles import gaussian_process
from hpstore.oracles.bayesian import least_gap
from hpstore.oracles.encoding import TOP
from hpstore.oracles.gaussian_process import GaussianProcess, matern52

# -- the Gaussian process against closed forms ------------------------------------------------


def matern_by_hand(r):
    return (1 + math.sqrt(5) * r + 5 * r * r / 3) * math.exp(-math.sqrt(5) * r)


def test_matern_kernel_matches_its_formula():
    a = np.array([[0.0, 0.0], [0.3, 0.4]])
    scales = np.array([0.5, 2.0])
    k = matern52(a, a, scales)
    r = math.sqrt((0.3 / 0.5) ** 2 + (0.4 / 2.0) ** 2)
    assert k[0, 0] == pytest.approx(1.0)
    assert k[0, 1] == pytest.approx(matern_by_hand(r)) and k[1, 0] == pytest.approx(k[0, 1])


def test_posterior_matches_the_closed_form():
    x = np.array([[0.1], [0.5], [0.9]])
    y = np.array([1.0, -1.0, 2.0])
    alpha = 1e-3
    gp = GaussianProcess(alpha, np.array([0.3])).fit(x, y, optimise=False)
    xs = np.array([[0.2], [0.7]])
    # by hand, on normalised targets
    yn = (y - y.mean()) / y.std()
    k = np.array([[matern_by_hand(abs(a - b) / 0.3) for b in x[:, 0]] for a in x[:, 0]])
    k += alpha * np.eye(3)
    ks = np.array([[matern_by_hand(abs(a - b) / 0.3) for b in x[:, 0]] for a in xs[:, 0]])
    mean = ks @ np.linalg.solve(k, yn) * y.std() + y.mean()
    var = 1 - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))
    got_mean, got_std = gp.predict(xs)
    assert got_mean == pytest.approx(mean)
    assert got_std == pytest.approx(np.sqrt(var) * y.std())


def test_prediction_at_data_is_the_data_with_little_doubt():
    x = np.array([[0.2, 0.1], [0.8, 0.6]])
    y = np.array([3.0, 5.0])
    gp = GaussianProcess(1e-6, np.array([0.5, 0.5])).fit(x, y, optimise=False)
    mean, std = gp.predict(x)
    assert mean == pytest.approx(y, abs=1e-3)
    assert np.all(std < 1e-2)
    far_mean, far_std = gp.predict(np.array([[50.0, 50.0]]))
    assert far_mean[0] == pytest.approx(4.0, abs=1e-6)  # back to the prior mean
    assert far_std[0] == pytest.approx(np.std(y), rel=1e-3)


def test_likelihood_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3))
    y = np.sin(3 * x[:, 0]) + x[:, 1]
    gp = GaussianProcess(1e-3).fit(x, y, optimise=False)
    theta = np.log(np.array([0.3, 0.7, 1.5]))
    _, grad = gp.log_marginal_likelihood(theta)
    for d in range(3):
        step = np.zeros(3)
        step[d] = 1e-5
        up, _ = gp.log_marginal_likelihood(theta + step)
        down, _ = gp.log_marginal_likelihood(theta - step)
        assert grad[d] == pytest.approx((up - down) / 2e-5, rel=1e-4, abs=1e-6)


def test_gradient_with_noise_signal_priors_and_grouped_inputs():
    rng = np.random.default_rng(2)
    x = rng.random((15, 4))  # the last two columns one group (a one-hot pair)
    y = np.cos(4 * x[:, 0]) + 0.3 * x[:, 2] + 0.05 * rng.normal(size=15)
    gp = GaussianProcess(1e-4, groups=np.array([0, 1, 2, 2]), fit_noise=True,
                         prior=True).fit(x, y, optimise=False)
    theta = np.array([math.log(0.4), math.log(1.2), math.log(0.8), math.log(1.5),
                      math.log(0.01)])  # three length scales, signal, noise
    _, grad = gp.log_marginal_likelihood(theta)
    assert len(grad) == 5
    for d in range(5):
        step = np.zeros(5)
        step[d] = 1e-5
        up, _ = gp.log_marginal_likelihood(theta + step)
        down, _ = gp.log_marginal_likelihood(theta - step)
        assert grad[d] == pytest.approx((up - down) / 2e-5, rel=1e-4, abs=1e-6)


def test_a_fitted_noise_explains_noisy_targets():
    rng = np.random.default_rng(3)
    x = rng.random((40, 1))
    clean = np.sin(5 * x[:, 0])
    noisy = clean + 0.3 * rng.normal(size=40)
    fitted = [GaussianProcess(1e-4, fit_noise=True, prior=True).fit(x, y, iterations=100).noise
              for y in (clean, noisy)]
    assert fitted[1] > 10 * fitted[0]  # on normalised targets


def test_fitting_raises_the_likelihood_and_finds_the_irrelevant_input():
    rng = np.random.default_rng(1)
    x = rng.random((30, 2))
    y = np.sin(6 * x[:, 0])  # the second input does nothing
    gp = GaussianProcess(1e-4)
    before, _ = gp.fit(x, y, optimise=False).log_marginal_likelihood(np.log([0.5, 0.5]))
    gp.fit(x, y, optimise=True, iterations=100)
    after, _ = gp.log_marginal_likelihood(np.log(gp.length_scales))
    assert after > before
    assert gp.length_scales[1] > 3 * gp.length_scales[0]


# -- the oracle ----------------------------------------------------------------------------


def mixed_space():
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    return hp


def mixed(v):
    return (v["x"] - 3) ** 2 + v["y"] + (v["c"] == "a")


def run(oracle, f, n=None, metric="loss"):
    history = []
    while (n is None or len(history) < n) and (t := oracle.create_trial("t")).status == "RUNNING":
        value = f(t.hyperparameters.values)
        oracle.update_trial(t.trial_id, {metric: value})
        t.status = "COMPLETED"
        oracle.end_trial(t)
        history.append((dict(t.hyperparameters.values), value))
    return history


def test_same_seed_same_suggestions():
    def suggestions(seed):
        oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=15,
                                                    hyperparameters=mixed_space(), seed=seed)
        return [v for v, _ in run(oracle, mixed)]

    first = suggestions(4)
    assert first == suggestions(4)
    assert first[9:] != suggestions(5)[9:]


def test_concentrates_near_the_minimum_of_a_quadratic():
    hp = hpstore.HyperParameters()
    hp.Float("x", -5, 5)
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=20, hyperparameters=hp,
                                                num_initial_points=4, seed=0)
    history = run(oracle, lambda v: (v["x"] - 1.3) ** 2)
    modelled = [v["x"] for v, _ in history[4:]]
    assert min(abs(x - 1.3) for x in modelled) < 0.05
    # most model-led suggestions sit near the minimum, unlike uniform random draws
    assert np.median([abs(x - 1.3) for x in modelled]) < 1.0


def test_runs_that_diverged_to_inf_are_the_worst_not_the_end_of_the_model(recwarn):
    # a diverged run may report inf: the model keeps it the worst and the rest finite
    # (before, every stretched score became inf or NaN and each decision warned)
    from hpstore.oracles.bayesian import stretch

    y = stretch(np.array([1.0, 2.0, np.inf, 0.5]))
    assert np.all(np.isfinite(y)) and list(np.argsort(y)) == [3, 0, 1, 2]
    hp = hpstore.HyperParameters()
    hp.Float("x", -5, 5)
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=14, hyperparameters=hp,
                                                num_initial_points=4, seed=2)
    history = run(oracle, lambda v: math.inf if v["x"] > 0 else (v["x"] + 2.5) ** 2)
    assert len(history) == 14
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert min(abs(v["x"] + 2.5) for v, _ in history[4:]) < 0.5


@pytest.mark.parametrize("far", [1e308, 1.7e308, 9e307])
def test_scores_near_the_float_range_keep_the_model(recwarn, far):
    # 1e308 beside -1e308 or inf: the stretch's differences and margin overflowed to inf,
    # then NaN in the model; it warned at each decision and proposed at random
    from hpstore.oracles.bayesian import stretch

    y = stretch(np.array([far, -far, 1.0, np.inf, 3.0, -np.inf]))
    assert np.all(np.isfinite(y)) and np.argmin(y) == 5 and np.argmax(y) == 3
    assert y[1] < y[2] <= y[4] < y[0]
    hp = hpstore.HyperParameters()
    hp.Float("x", -5, 5)
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=14, hyperparameters=hp,
                                                num_initial_points=4, seed=2)
    history = run(oracle, lambda v: far if v["x"] > 0 else (v["x"] + 2.5) ** 2)
    assert len(history) == 14
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert min(abs(v["x"] + 2.5) for v, _ in history[4:]) < 0.5


def test_beats_its_own_random_start_on_the_mixed_problem():
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=40,
                                                hyperparameters=mixed_space(), seed=2)
    history = run(oracle, mixed)
    initial = 3 * 3
    assert min(s for _, s in history[initial:]) < min(s for _, s in history[:initial])
    assert min(s for _, s in history) < 0.5


def test_a_bound_that_promises_nothing_gives_way_to_the_likeliest_improvement():
    from hpstore.oracles.bayesian import acquisition_order

    # a hair from the best (mean -1.0, sure of it) and two regions the model doubts
    means, stds = np.array([-1.0, 0.5, 2.0]), np.array([0.001, 0.5, 0.5])
    # some bound (mean - 2.6 std: -1.0026, -0.8, 0.7) reaches the target: lowest first
    assert list(acquisition_order(means, stds, 2.6, target=-0.9)) == [0, 1, 2]
    # none does: the fewest deviations above the target first (30, 3.06, 6.06)
    assert list(acquisition_order(means, stds, 2.6, target=-1.03)) == [1, 2, 0]
    # and when only the best region is near the target, it is refined again
    assert list(acquisition_order(means, np.array([0.01, 0.1, 0.1]), 2.6,
                                  target=-1.03)) == [0, 1, 2]


def test_leaves_a_region_it_is_sure_of_for_a_better_one():
    # Six interacting choices and a float: the search finds a good region early; refining
    # its float further gains nothing visible, and the best set of choices is elsewhere.
    from benchmarks import quality
    from benchmarks.suite import problem

    categorical = problem("categorical")
    for seed in (1, 3):
        oracle = hpstore.BayesianOptimizationOracle(
            "loss", max_trials=100, hyperparameters=quality.hpstore_space(categorical),
            seed=seed)
        history = run(oracle, categorical.function)
        assert min(s for _, s in history) < categorical.optimum + 0.06, seed


def test_never_repeats_and_stops_exactly_on_a_finite_space():
    hp = hpstore.HyperParameters()
    hp.Int("a", 0, 3)
    hp.Boolean("b")
    hp.Choice("c", ["p", "q", "r"])
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=100, hyperparameters=hp,
                                                num_initial_points=3, seed=1)
    history = run(oracle, lambda v: v["a"] + 2 * v["b"] + (v["c"] == "q"))
    keys = [tuple(sorted(v.items())) for v, _ in history]
    assert len(keys) == len(set(keys)) == 24


def test_conditional_and_every_type_of_hyperparameter():
    hp = hpstore.HyperParameters()
    hp.Choice("model", ["linear", "tree"])
    with hp.conditional_scope("model", ["tree"]):
        hp.Int("depth", 1, 8)
        hp.Boolean("bagging")
    with hp.conditional_scope("model", ["linear"]):
        hp.Float("l2", 1e-5, 1.0, sampling="log")
    hp.Fixed("version", "v2")

    def score(v):
        if v["model"] == "tree":
            assert "l2" not in v
            return abs(v["depth"] - 5) + (0.5 if v["bagging"] else 0)
        assert "depth" not in v and "bagging" not in v
        return 1 + abs(math.log10(v["l2"]) + 2)

    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=30, hyperparameters=hp,
                                                seed=3)
    history = run(oracle, score)
    assert len(history) == 30
    assert all(v["version"] == "v2" for v, _ in history)
    assert min(s for _, s in history) == 0


def test_maximising_and_running_trials(tmp_path):
    oracle = hpstore.BayesianOptimizationOracle(
        hpstore.Objective("acc", "max"), max_trials=30, hyperparameters=mixed_space(),
        seed=6, database=str(tmp_path / "b.db"))
    history = run(oracle, lambda v: -mixed(v), n=20, metric="acc")
    assert max(s for _, s in history[9:]) >= max(s for _, s in history[:9])
    # two workers asking at once get different points: the running one is accounted for
    a, b = oracle.create_trial("a"), oracle.create_trial("b")
    assert a.hyperparameters.values != b.hyperparameters.values


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_initial_points"):
        hpstore.BayesianOptimizationOracle("loss", num_initial_points=0)
    with pytest.raises(ValueError, match="alpha"):
        hpstore.BayesianOptimizationOracle("loss", alpha=-1.0)
    for name in ("alpha", "beta"):  # (an OverflowError naming nothing)
        with pytest.raises(ValueError, match=rf"`{name}` must be a .*finite number.*, "
                                             r"received 1000000000"):
            hpstore.BayesianOptimizationOracle("loss", **{name: 10**400})
    with pytest.raises(ValueError, match="beta"):
        hpstore.BayesianOptimizationOracle("loss", beta=float("nan"))



# -- trials ended early by a stopping rule ------------------------------------------------------


def steered(path, direction):
    """Completed trials improving towards small x, and trials stopped early at small x
    whose partial scores look better than any completed one. With ``direction`` "max" the
    metric is turned around (3 - loss), so the same search is asked either way."""
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    metric = (lambda loss: {"loss": loss}) if direction == "min" else (
        lambda loss: {"gain": 3.0 - loss})
    oracle = hpstore.BayesianOptimizationOracle(
        hpstore.Objective(next(iter(metric(0))), direction), max_trials=3,
        hyperparameters=hp, num_initial_points=3, seed=1, database=path)
    for x, loss in ((0.95, 1.0), (0.85, 1.1), (0.75, 1.2), (0.65, 1.3)):
        oracle.add_trial({"x": x}, metric(loss))
    for x in (0.05, 0.15, 0.25, 0.35, 0.45):
        oracle.add_trial({"x": x}, metric(0.5), status="STOPPED", step=3)
    return oracle


@pytest.mark.parametrize("direction", ["min", "max"])
def test_stopped_trials_count_no_better_than_the_worst_completed(tmp_path, direction):
    oracle = steered(str(tmp_path / "s.db"), direction)
    # Left out, the model would follow the completed trials' trend into the stopped
    # trials' region; taken at their partial score, it would go there first.
    proposed = [oracle.create_trial("t").hyperparameters.values["x"] for _ in range(3)]
    assert all(x > 0.5 for x in proposed), proposed


def test_trials_stopped_with_no_score_steer_the_model_away():
    # a trial stopped on an all-NaN curve (a run diverging where x > 2) has no score: the
    # model never saw it, and proposed the same point again and again (17 of 20)
    from collections import Counter

    hp = hpstore.HyperParameters()
    hp.Float("x", -5, 5)
    hp.Float("y", -5, 5)
    oracle = hpstore.BayesianOptimizationOracle(
        objective="loss", max_trials=25, hyperparameters=hp, seed=1, num_initial_points=5,
        early_stopping=hpstore.MedianStopping(min_trials=1))
    points = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        x, y = trial.hyperparameters["x"], trial.hyperparameters["y"]
        loss = math.nan if x > 2 else (x - 1) ** 2 + (y + 1) ** 2
        for step in range(3):
            if oracle.update_trial(trial.trial_id, {"loss": loss}, step=step).status == "STOPPED":
                break
        oracle.end_trial(trial)
        points.append((round(x, 2), round(y, 2)))
    model = points[5:]
    assert len(model) == 20
    assert max(Counter(model).values()) <= 2, model
    assert sum(x > 2 for x, _ in model) <= 8, model  # (random search: about 6)


# -- many hyperparameters ---------------------------------------------------------------------


def least_gap_by_hand(points):
    return min(float(((points[i] - points[j]) ** 2).sum())
               for i in range(len(points)) for j in range(len(points)) if i != j)


def design_by_hand(seed, n, d):
    """The design as first written: every pair's differences in one n x n x d array."""
    rng = np.random.default_rng(np.random.SeedSequence([seed % 2**32, n, d, 7]))
    best, best_gap = None, -1.0
    for _ in range(max(1, min(20, 2000 // n))):
        design = (np.argsort(rng.random((n, d)), axis=0) + rng.random((n, d))) / n
        gaps = ((design[:, None, :] - design[None, :, :]) ** 2).sum(-1)
        gaps[np.diag_indices(n)] = np.inf
        if gaps.min() > best_gap:
            best, best_gap = design, float(gaps.min())
    return np.minimum(best, TOP)


def test_the_least_gap_taken_in_blocks_is_every_pairs_least():
    points = np.random.default_rng(5).random((23, 4))
    expected = least_gap_by_hand(points)
    for budget in (1, 4 * 23, 7 * 23 * 4, 10**9):  # one row a block up to one block
        assert least_gap(points, budget) == expected
    assert least_gap(points[:1]) == math.inf


@pytest.mark.parametrize("n, d", [(9, 3), (40, 7), (120, 12), (2001, 1)])
def test_the_initial_design_is_the_one_every_pair_at_once_picked(n, d):
    oracle = hpstore.BayesianOptimizationOracle("loss", seed=11)
    assert np.array_equal(oracle._design(n, d), design_by_hand(11, n, d))


def test_a_space_of_1100_floats_gets_its_first_trials():
    # The design's least gap held every pair's differences at once: create_trial asked
    # numpy for 89 GiB (3,300 points x 3,300 x 1,100) and raised.
    hps = hpstore.HyperParameters()
    for i in range(1100):
        hps.Float(f"x{i}", -1.0, 1.0)
    oracle = hpstore.BayesianOptimizationOracle("loss", hyperparameters=hps, seed=2)
    firsts = []
    for k in range(2):
        trial = oracle.create_trial(f"t{k}")
        assert trial.status == "RUNNING"
        values = trial.hyperparameters.values
        assert len(values) == 1100 and all(-1.0 <= v <= 1.0 for v in values.values())
        firsts.append(values)
    assert firsts[0] != firsts[1]


def _likelihood(n, d, groups=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d))
    gp = GaussianProcess(1e-4, groups=groups, fit_noise=True, prior=True)
    gp.fit(x, np.sin(3 * x[:, :2].sum(1)), optimise=False)
    return gp.log_marginal_likelihood(gp._theta() + rng.normal(0, 0.3, len(gp._theta())))


@pytest.mark.parametrize("groups", [None, np.array([0, 1, 1, 1, 2, 3, 3])])
def test_the_likelihood_taken_in_blocks_of_rows_is_the_one_taken_at_once(monkeypatch, groups):
    whole, whole_grad = _likelihood(30, 7, groups)
    monkeypatch.setattr(gaussian_process, "LIKELIHOOD_BLOCK", 4 * 30 * 7)  # 8 blocks
    blocked, blocked_grad = _likelihood(30, 7, groups)
    assert blocked == whole  # (each distance is summed as before)
    np.testing.assert_allclose(blocked_grad, whole_grad, rtol=1e-12, atol=1e-300)


def test_the_likelihood_of_many_inputs_never_holds_every_pairs_differences():
    # 150 points of 1,000 inputs: n x n x d floats are 180 MB; the fit held two such
    # arrays (the differences, then their sums by group) at each of its steps.
    full = 150 * 150 * 1000 * 8
    tracemalloc.start()
    try:
        lml, grad = _likelihood(150, 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert math.isfinite(lml) and np.isfinite(grad).all()
    assert peak < full
