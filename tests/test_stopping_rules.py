"""Each stopping rule's decisions on hand-made learning curves, and side by side with
Optuna's pruners on random ones (where optuna is installed)."""

from __future__ import annotations

import math
import random
import warnings

import pytest

from hpstore.stopping import (
    Curve,
    MedianStopping,
    Patience,
    PercentileStopping,
    SuccessiveHalving,
    Threshold,
    curve_from,
    rule_from_config,
)


class Others:
    """A History over hand-made curves: ``completed`` trials and ``running`` ones."""

    def __init__(self, completed=(), running=()):
        self.completed = [dict(c) for c in completed]
        self.running = [dict(c) for c in running]

    def completed_count(self):
        return len(self.completed)

    def completed_values_at(self, step):
        return [c[step] for c in self.completed if step in c]

    def values_from(self, step):
        found = []
        for c in self.completed + self.running:
            later = [s for s in c if s >= step]
            if later:
                found.append(c[min(later)])
        return found


def curve(values, direction="min", start=0):
    return Curve(tuple(range(start, start + len(values))), tuple(values), direction)


def flat(value, n=10):
    return {s: value for s in range(n)}


# -- median and percentile ----------------------------------------------------------------------

def test_median_stops_a_trial_worse_than_the_median_at_its_step():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    rule = MedianStopping()
    assert rule.decide(curve([3.5]), others) is not None
    message = rule.decide(curve([9.0, 3.5]), others)
    assert message is not None and "3.5" in message and "median 3" in message
    assert rule.decide(curve([2.5]), others) is None


def test_a_tie_with_the_median_goes_on():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    assert MedianStopping().decide(curve([3.0]), others) is None


def test_the_best_so_far_is_compared_not_the_last():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    assert MedianStopping().decide(curve([2.0, 8.0, 9.0]), others) is None


def test_too_few_completed_trials_decide_nothing():
    four = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0)])
    assert MedianStopping().decide(curve([100.0]), four) is None
    assert MedianStopping(min_trials=4).decide(curve([100.0]), four) is not None
    assert MedianStopping(min_trials=0).decide(curve([100.0]), Others()) is None


def test_running_trials_are_not_counted_in_the_median():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)],
                    running=[flat(100.0) for _ in range(20)])
    assert MedianStopping().decide(curve([3.5]), others) is not None


def test_warmup_and_interval():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    rule = MedianStopping(warmup_steps=3, interval_steps=2)
    bad = [9.0] * 10
    decided = [s for s in range(8) if rule.decide(curve(bad[: s + 1]), others)]
    assert decided == [3, 5, 7]  # from step 3 on, once every 2 steps


def test_interval_decides_at_the_first_report_in_a_window_when_steps_are_skipped():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    rule = MedianStopping(interval_steps=4)
    sparse = Curve((0, 3, 5), (9.0, 9.0, 9.0), "min")
    assert rule.decide(sparse, others) is not None  # step 5 is the first report in [4, 8)
    assert rule.decide(Curve((0, 5, 6), (9.0, 9.0, 9.0), "min"), others) is None


def test_min_trials_at_step():
    others = Others([{0: 1.0}, {0: 2.0}, {0: 1.5}, flat(1.0), flat(2.0)])
    rule = MedianStopping(min_trials_at_step=3)
    assert rule.decide(curve([9.0, 9.0, 9.0]), others) is None  # only 2 reached step 2
    assert rule.decide(curve([9.0]), others) is not None


@pytest.mark.filterwarnings("error")  # NaN values are left out without a warning in the
def test_nan_values():                 # worker's output, even when every other one is NaN
    others = Others([flat(v) for v in (1.0, 2.0, math.nan, 4.0, 5.0)])
    rule = MedianStopping()
    assert rule.decide(curve([math.nan, math.nan]), others) is not None  # all NaN: stop
    assert rule.decide(curve([math.nan, 2.5]), others) is None  # NaN steps ignored
    assert rule.decide(curve([math.nan, 4.5]), others) is not None
    all_nan = Others([flat(math.nan) for _ in range(5)])
    assert rule.decide(curve([100.0]), all_nan) is None  # no median to compare with


def test_maximised_objectives_count_percentiles_from_the_top():
    others = Others([flat(v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)])
    top_quarter = PercentileStopping(25)
    assert top_quarter.decide(curve([0.35], "max"), others) is not None  # below the 75th pct
    assert top_quarter.decide(curve([0.45], "max"), others) is None
    assert MedianStopping().decide(curve([0.25], "max"), others) is not None


# -- successive halving ---------------------------------------------------------------------------

def test_asha_rungs_and_promotion():
    rule = SuccessiveHalving(min_resource=1, reduction_factor=3)
    assert rule.rung_steps(30) == [1, 3, 9, 27]
    # at rung 0 (step 1), eight others: the best 9 // 3 = 3 of nine go on
    others = Others([{1: float(v)} for v in range(1, 9)])
    assert rule.decide(curve([5.0, 2.5]), others) is None  # 2.5 is 3rd of 9
    message = rule.decide(curve([5.0, 3.5]), others)
    assert message is not None and "rung 0" in message
    # between rungs nothing is decided
    assert rule.decide(curve([5.0, 1.0, 50.0]), others) is None


def test_asha_with_few_trials_keeps_only_the_best():
    rule = SuccessiveHalving()
    assert rule.decide(curve([0.0, 2.0]), Others([{1: 1.0}])) is not None
    assert rule.decide(curve([0.0, 0.5]), Others([{1: 1.0}])) is None
    assert rule.decide(curve([0.0, 7.0]), Others()) is None  # alone at the rung


def test_asha_judges_each_rung_passed_since_the_last_report():
    rule = SuccessiveHalving(min_resource=1, reduction_factor=2)
    others = Others([{1: 1.0, 2: 1.0, 4: 1.0}, {1: 9.0, 2: 9.0, 4: 9.0}])
    # jumping from step 0 to step 4 passes rungs 1, 2 and 4; its value there is 5.0
    message = rule.decide(Curve((0, 4), (0.0, 5.0), "min"), others)
    assert message is not None and "rung 0" in message


def test_asha_counts_every_status_and_a_value_at_the_first_step_past_the_rung():
    rule = SuccessiveHalving(min_resource=3, reduction_factor=2)
    others = Others(running=[{2: 0.0, 4: 1.0}, {5: 2.0}])  # rung step 3: values 1.0, 2.0
    # competing at the rung: 1.0, 2.0 and its own; with factor 2 only the best goes on
    assert rule.decide(curve([0.0] * 3 + [0.9]), others) is None
    assert rule.decide(curve([0.0] * 3 + [1.0]), others) is None  # a tie with the cut-off
    assert rule.decide(curve([0.0] * 3 + [1.5]), others) is not None


def test_asha_nan_stops():
    assert SuccessiveHalving().decide(curve([0.0, math.nan]), Others()) is not None


def test_asha_maximised():
    rule = SuccessiveHalving(reduction_factor=2)
    others = Others([{1: 0.9}, {1: 0.1}, {1: 0.5}])
    assert rule.decide(curve([0.0, 0.6], "max"), others) is None  # 2nd of 4 -> kept
    assert rule.decide(curve([0.0, 0.4], "max"), others) is not None


# -- patience and threshold -----------------------------------------------------------------------

def test_patience():
    rule = Patience(patience=2)
    assert rule.decide(curve([5.0, 4.0, 4.5, 4.2]), Others()) is None  # 3 values after 5.0
    assert rule.decide(curve([5.0, 4.0, 4.5, 4.2, 4.1]), Others()) is not None
    assert rule.decide(curve([5.0, 4.0, 4.5, 4.2, 3.9]), Others()) is None
    assert Patience(patience=2, min_delta=0.5).decide(
        curve([5.0, 4.0, 4.5, 4.2, 3.9]), Others()) is not None
    assert rule.decide(curve([5.0, 4.0, 4.0, 4.0, 4.0]), Others()) is not None  # flat
    assert rule.decide(curve([0.5, 0.55, 0.52, 0.58, 0.6], "max"), Others()) is None
    assert rule.decide(curve([0.5, 0.6, 0.55, 0.52, 0.58], "max"), Others()) is not None


def test_patience_wrapping_a_rule_asks_it_only_when_stalled():
    others = Others([flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    rule = Patience(MedianStopping(), patience=1)
    assert rule.decide(curve([9.0, 8.0, 7.5]), others) is None  # improving: not asked
    assert rule.decide(curve([9.0, 8.0, 8.5, 8.6]), others) is not None  # stalled and bad
    assert rule.decide(curve([2.0, 1.0, 1.5, 1.6]), others) is None  # stalled but good


def test_threshold():
    rule = Threshold(lower=0.0, upper=10.0)
    assert rule.decide(curve([5.0]), Others()) is None
    assert "above" in rule.decide(curve([5.0, 11.0]), Others())
    assert "below" in rule.decide(curve([-1.0]), Others())
    assert "NaN" in rule.decide(curve([math.nan]), Others())
    assert Threshold(upper=1.0, warmup_steps=2).decide(curve([5.0, 5.0]), Others()) is None
    with pytest.raises(ValueError, match="lower"):
        Threshold()
    with pytest.raises(ValueError, match="above"):
        Threshold(lower=2, upper=1)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: PercentileStopping(101), "percentile"),
    (lambda: MedianStopping(min_trials=-1), "min_trials"),
    (lambda: MedianStopping(interval_steps=0), "interval_steps"),
    (lambda: SuccessiveHalving(reduction_factor=1), "reduction_factor"),
    (lambda: SuccessiveHalving(min_resource=0), "min_resource"),
    (lambda: Patience(patience=-1), "patience"),
    (lambda: Patience(min_delta=-0.1), "min_delta"),
    (lambda: Patience(rule="median"), "rule"),
    (lambda: Threshold(lower="1"), "lower"),
    (lambda: Threshold(upper=float("inf")), "upper"),  # (accepted, then no JSON to store)
    (lambda: Patience(min_delta=float("inf")), "min_delta"),
    # past 64 bits, or past any step: SuccessiveHalving(min_early_stopping_rate=2**40)
    # computed a power of millions of digits at each report, holding the write lock
    (lambda: SuccessiveHalving(min_early_stopping_rate=2**40), "min_early_stopping_rate"),
    (lambda: SuccessiveHalving(min_early_stopping_rate=40), "first rung"),
    (lambda: SuccessiveHalving(min_resource=2**70), "min_resource"),
    (lambda: MedianStopping(interval_steps=2**70), "interval_steps"),
    # an int past a float's range: a bare OverflowError
    (lambda: PercentileStopping(10**400), "percentile"),
    (lambda: Threshold(lower=10**400), "lower"),
    (lambda: Patience(min_delta=10**400), "min_delta"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
    SuccessiveHalving(reduction_factor=2, min_early_stopping_rate=62)  # (the last that fits)


@pytest.mark.parametrize("rule", [
    MedianStopping(min_trials=3, warmup_steps=2), PercentileStopping(10.0),
    SuccessiveHalving(2, 4, 1), Patience(MedianStopping(), patience=4, min_delta=0.1),
    Patience(patience=1), Threshold(lower=-1.0)])
def test_configs_round_trip(rule):
    assert rule_from_config(rule.get_config()) == rule
    assert repr(rule).startswith(type(rule).__name__)


def test_curve_from_averages_reports_at_one_step():
    c = curve_from([(0, 1.0), (1, 2.0), (1, 4.0), (3, 5.0)], "min")
    assert c.steps == (0, 1, 3) and c.values == (1.0, 3.0, 5.0) and c.step == 3


# -- side by side with Optuna ---------------------------------------------------------------------

def _optuna_decisions(pruner, histories, trial_curve, direction):
    """What an Optuna pruner decides at each step of ``trial_curve`` given completed
    ``histories`` (each a list of values per step)."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize" if direction == "min" else "maximize",
                                pruner=pruner)
    for values in histories:
        trial = study.ask()
        for step, v in enumerate(values):
            trial.report(v, step)
        study.tell(trial, values[-1])
    trial = study.ask()
    decisions = []
    for step, v in enumerate(trial_curve):
        trial.report(v, step)
        decisions.append(trial.should_prune())
    return decisions


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("direction", ["min", "max"])
def test_median_and_percentile_decide_as_optuna_does(seed, direction):
    rng = random.Random(seed)
    histories = [[rng.gauss(0, 1) + 0.1 * s * (1 if direction == "max" else -1)
                  for s in range(rng.randint(3, 12))] for _ in range(rng.randint(0, 9))]
    trial_curve = [rng.gauss(0, 1) for _ in range(12)]
    others = Others([dict(enumerate(h)) for h in histories])
    optuna = pytest.importorskip("optuna")
    for ours, theirs in [
        (MedianStopping(min_trials=3, warmup_steps=2),
         optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)),
        (PercentileStopping(30.0, min_trials=2, interval_steps=3, min_trials_at_step=2),
         optuna.pruners.PercentilePruner(30.0, n_startup_trials=2, interval_steps=3,
                                         n_min_trials=2)),
    ]:
        expected = _optuna_decisions(theirs, histories, trial_curve, direction)
        got = [ours.decide(curve(trial_curve[: s + 1], direction), others) is not None
               for s in range(len(trial_curve))]
        assert got == expected


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("direction", ["min", "max"])
def test_successive_halving_stops_where_optuna_prunes(seed, direction):
    """Trials one after another, each reporting until stopped: the same stop steps."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = random.Random(seed)
    curves = [[rng.gauss(0, 1) + rng.random() * s / 10 for s in range(30)] for _ in range(20)]
    study = optuna.create_study(
        direction="minimize" if direction == "min" else "maximize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    theirs = []
    for values in curves:
        trial = study.ask()
        stopped = None
        for step, v in enumerate(values):
            trial.report(v, step)
            if trial.should_prune():
                stopped = step
                break
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if stopped is not None else (
            study.tell(trial, values[-1]))
        theirs.append(stopped)
    rule = SuccessiveHalving(min_resource=1, reduction_factor=3)
    ours, seen = [], []
    for values in curves:
        history = Others(running=seen)
        stopped = None
        for step in range(len(values)):
            if rule.decide(curve(values[: step + 1], direction), history) is not None:
                stopped = step
                break
        seen.append(dict(enumerate(values[: (stopped if stopped is not None else 29) + 1])))
        ours.append(stopped)
    assert ours == theirs




@pytest.mark.parametrize("direction", ["min", "max"])
@pytest.mark.parametrize("seed", range(12))
def test_curves_kept_as_reports_arrive_equal_the_curve_read_whole(seed, direction):
    # a rule's curve was read and averaged whole at each report: a run of n reports cost
    # n squared; kept as they arrive it must be the same curve, whatever the steps' order
    import random

    from hpstore.stopping import CurvesSoFar

    rng = random.Random(seed)
    kept, every, next_id = CurvesSoFar(), {(1, 1): [], (1, 2): [], (2, 1): []}, 1
    for _ in range(300):
        run = rng.choice(list(every))
        batch = []
        for _ in range(rng.randint(1, 3)):
            step = rng.choice([rng.randint(0, 40), len(every[run]) + rng.randint(0, 3)])
            value = rng.choice([rng.uniform(-5, 5), math.nan, 1e308])
            batch.append((next_id, step, value))
            next_id += 1
        last = kept.last(*run)
        assert last is None or last[0] == max(i for i, _, _ in every[run])
        if rng.random() < 0.05:
            kept.clear()  # (another thread saw the project replaced)
            last = None
        given = batch if last is not None else every[run] + batch  # (else read whole)
        curve = kept.curve(*run, last, given, direction)
        every[run] += batch
        whole = curve_from([(s, v) for _, s, v in every[run]], direction)
        assert curve.steps == whole.steps
        assert [repr(v) for v in curve.values] == [repr(v) for v in whole.values]
        assert repr(curve.best()) == repr(whole.best())
        if rng.random() < 0.9:  # else: its transaction rolled back, nothing kept
            kept.keep(*run, last, given, direction)
        else:
            every[run] = every[run][:-len(batch)]


def test_points_that_followed_a_curve_forgotten_meanwhile_are_not_kept():
    # another thread forgot the curves between a report's judgement and its keeping: the
    # points kept alone would have made a curve without the run's start
    from hpstore.stopping import CurvesSoFar

    kept = CurvesSoFar()
    kept.keep(1, 1, None, [(1, 0, 5.0), (2, 1, 4.0)], "min")
    last = kept.last(1, 1)
    assert last == (2, 1, 4.0)
    assert kept.curve(1, 1, last, [(3, 2, 3.0)], "min").steps == (0, 1, 2)
    kept.clear()
    kept.keep(1, 1, last, [(3, 2, 3.0)], "min")
    assert kept.last(1, 1) is None  # the next report reads the run whole
    assert kept.curve(1, 1, last, [(4, 3, 2.0)], "min") is None  # (unjudged, not wrong)


def test_a_step_reported_twice_counts_at_its_mean_where_optuna_keeps_the_first():
    """The one difference the README names for the median rule: Optuna ignores a second
    report at a step, hpstore averages them (as it scores the trial)."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    for value in (1.0, 2.0):
        done = study.ask()
        done.report(value, 0)
        study.tell(done, value)
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns that it ignores the second report
        trial.report(1.0, 0)
        trial.report(3.0, 0)
    assert not trial.should_prune()  # Optuna: 1.0, not above the median 1.5
    ours = curve_from([(0, 1.0), (0, 3.0)], "min")  # hpstore: 2.0, above it
    assert MedianStopping(min_trials=1).decide(ours, Others([{0: 1.0}, {0: 2.0}])) is not None
