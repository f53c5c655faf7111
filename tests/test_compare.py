"""The comparison runner: budgets, result rows, the shared results cache, summaries and plots."""

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from metalib import classifiers as clf
from metalib import compare, data

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def small():
    splits = data.rotten_tomatoes(seed=0)
    rows = lambda split, n: SimpleNamespace(texts=split.texts[:n], labels=split.labels[:n])  # noqa: E731
    return SimpleNamespace(train=rows(splits.train, 300), test=rows(splits.test, 80))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    return tmp_path


def test_budgets_and_their_checks():
    assert compare.budgets((16, None), seeds=(0, 1)) == [
        compare.Budget(16, 0),
        compare.Budget(16, 1),
        compare.Budget(None, 0),
        compare.Budget(None, 1),
    ]
    for bad in (1, -2):
        with pytest.raises(ValueError, match="0 labels \\(zero-shot\\) or at least 2"):
            compare.Budget(bad)


def test_a_zero_label_budget_fits_zero_shot_estimators_on_nothing(small, cache):
    descriptions = clf.LabelDescriptionClassifier(max_length=16)
    row = compare.run(descriptions, small, compare.Budget(0))
    assert (
        row["labels_used"] == 0 and row["trainable_parameters"] == 0 and "uses no label" in row["selection"]
    )
    assert row["accuracy"] > 0.5  # two sentences describing the classes beat a coin on 80 real reviews
    with pytest.raises(ValueError, match="texts is empty"):
        compare.run(clf.MajorityClassifier(), small, compare.Budget(0))  # it needs labels


class WithUnlabelled(clf.MajorityClassifier):
    """A majority classifier with a list of texts among its parameters (as a distilled student has)."""

    def __init__(self, unlabelled: tuple[str, ...] = ()) -> None:
        self.unlabelled = unlabelled


def test_long_lists_of_texts_in_parameters_are_hashed_in_rows(small, cache):
    texts = tuple(small.train.texts[:100])
    hashed = compare._params(WithUnlabelled(texts))["unlabelled"]
    assert hashed["texts"] == 100 and len(hashed["sha256"]) == 16
    assert (
        compare._params(WithUnlabelled(texts[:99] + ("other",)))["unlabelled"]["sha256"] != hashed["sha256"]
    )
    assert compare._params(WithUnlabelled(texts[:3]))["unlabelled"] == list(texts[:3])  # short: as it is


def test_a_row_is_computed_once_then_served_from_the_cache(small, cache):
    row = compare.run(clf.MajorityClassifier(), small, compare.Budget(32, seed=0), name="majority")
    assert row["method"] == "majority" and not row["cached"]
    assert row["labels_used"] == 32 and row["n_test"] == 80 and row["trainable_parameters"] == 0
    test = np.asarray(small.test.labels)
    train_majority = np.bincount(np.asarray(small.train.labels)).argmax()  # 32 stratified rows keep it
    assert row["accuracy"] == pytest.approx((test == train_majority).mean())
    assert row["low"] < row["accuracy"] < row["high"] and row["selection"] == "fixed in advance"
    assert row["bytes_per_task"] > 0 and row["predict_ms_per_text"] >= 0 and row["details"] == {}
    again = compare.run(clf.MajorityClassifier(), small, compare.Budget(32, seed=0), name="majority")
    assert again["cached"] and {**again, "cached": False} == row
    assert len(list((cache / "results").glob("*.json"))) == 1
    compare.run(clf.MajorityClassifier(), small, compare.Budget(32, seed=1))  # another draw: another row
    probe = clf.LinearProbeClassifier(folds=2, max_length=16)
    compare.run(probe, small, compare.Budget(32))
    compare.run(probe.set_params(cs=(1.0,)), small, compare.Budget(32))  # other parameters: another row
    assert len(list((cache / "results").glob("*.json"))) == 4
    fresh = compare.run(clf.MajorityClassifier(), small, compare.Budget(32), cache=False)
    assert not fresh["cached"] and fresh["accuracy"] == row["accuracy"]


def test_the_data_fingerprint_sees_texts_and_labels(small):
    other = SimpleNamespace(train=small.train, test=SimpleNamespace(texts=small.test.texts, labels=[0] * 80))
    assert compare.data_fingerprint(small) == compare.data_fingerprint(small)
    assert compare.data_fingerprint(small) != compare.data_fingerprint(other)


def test_grid_summary_and_plots(small, cache):
    estimators = {
        "majority": clf.MajorityClassifier(),
        "probe": clf.LinearProbeClassifier(folds=2, max_length=16),
    }
    frame = compare.grid(estimators, small, compare.budgets((16, 64), seeds=(0, 1)), progress=False)
    assert len(frame) == 8 and frame["method"].tolist()[:4] == ["majority"] * 4
    summary = compare.summarize(frame)
    assert summary.loc[("probe", 64), "draws"] == 2
    low, high = summary.loc[("probe", 64), ["low", "high"]]
    assert low <= summary.loc[("probe", 64), "accuracy"] <= high
    assert summary.loc[("probe", 16), "trainable_parameters"] == 385
    with_details = frame.assign(
        details=[{"seconds_per_step": 2.0 * i, "peak_cuda_bytes": None} for i in range(8)]
    )
    means = compare.summarize(with_details)["seconds_per_step"]  # numeric details are averaged too
    assert means[("majority", 16)] == 1.0 and means[("probe", 64)] == 13.0
    assert "peak_cuda_bytes" not in compare.summarize(with_details)  # no number in it
    assert (
        summary.loc[("probe", 64), "min"] == frame.loc[frame["method"] == "probe"].iloc[2:]["accuracy"].min()
    )
    assert (summary["min"] <= summary["accuracy"]).all() and (summary["accuracy"] <= summary["max"]).all()
    single = compare.summarize(frame[frame["seed"] == 0])  # one draw: its Wilson interval
    assert single.loc[("majority", 16), "low"] == frame.iloc[0]["low"]
    point = compare.estimate(summary.loc[("probe", 64)])  # a summary line: n is its draws
    assert (point.n, point.mean) == (2, summary.loc[("probe", 64), "accuracy"])
    row = compare.estimate(frame.iloc[0])  # a row: n is its test texts
    assert (row.n, row.low) == (frame.iloc[0]["n_test"], frame.iloc[0]["low"])
    assert compare.plot_learning_curves(frame, baseline=0.6).get_xscale() == "log"
    ax = compare.plot_cost(frame, cost="predict_ms_per_text")
    assert "at 64 labels" in ax.get_ylabel()
    ringed = compare.plot_cost(frame, cost="fit_seconds", front=True)
    assert "Pareto front" in [t.get_text() for t in ringed.get_legend().get_texts()]
    table = compare.accuracy_table(summary, [0, 16, 64], {("majority", 0): "needs labels"})
    assert table.loc["majority", 0] == "needs labels" and table.loc["probe", 0] == ""
    assert table.loc["probe", 64].endswith("×2") and table.loc["probe", 64].startswith(f"{point.mean:.3f}")
    assert compare.crossover(summary, "probe", "probe") is None  # never above itself


def test_the_pareto_front_keeps_the_points_nothing_beats():
    import pandas as pd

    points = pd.DataFrame(
        {"ms": [1.0, 2.0, 3.0, 2.0, float("nan"), 0.5], "accuracy": [0.7, 0.8, 0.75, 0.8, 0.9, 0.6]},
        index=list("abcdef"),
    )
    front = compare.pareto_front(points, "ms")
    assert front[front].index.tolist() == ["a", "b", "d", "f"]  # c: b is faster and better; e: no cost


def test_decide_picks_the_best_method_within_labels_and_latency():
    import pandas as pd

    rows = [  # method, labels_used, accuracy, low, high, ms per text
        ("zero-shot", 0, 0.70, 0.67, 0.73, 50.0),
        ("probe", 16, 0.65, 0.60, 0.70, 1.0),
        ("probe", 256, 0.74, 0.72, 0.76, 1.0),
        ("fine-tune", 256, 0.80, 0.78, 0.82, 5.0),
    ]
    summary = pd.DataFrame(rows, columns=["method", "labels_used", "accuracy", "low", "high", "ms"])
    table = compare.decide(summary.set_index(["method", "labels_used"]), [16, 1000], [0.5, 2.0, 100.0], "ms")
    assert pd.isna(table.loc[(16, 0.5), "method"])  # nothing is that fast
    assert table.loc[(16, 2.0), "method"] == "probe" and table.loc[(16, 2.0), "labels_used"] == 16
    best = table.loc[(16, 100.0)]  # 16 labels: the zero-shot method's point beats the probe's
    assert (best["method"], best["runner_up"], best["separated"]) == ("zero-shot", "probe", False)
    best = table.loc[(1000, 100.0)]  # the largest budget within 1,000 labels: 256
    assert (best["method"], best["labels_used"], best["runner_up"]) == ("fine-tune", 256, "probe")
    assert best["separated"] and best["cost"] == 5.0
    assert table.loc[(1000, 2.0), "accuracy"] == 0.74


def test_stored_bytes_leave_the_measured_times_out(small):
    sizes = set()
    for seconds in (0.5, 0.123456789012345):  # a time's digits vary from run to run
        estimator = clf.MajorityClassifier().fit(small.train.texts, small.train.labels)
        estimator._json_state = lambda s=seconds: {"steps": 3, "seconds_per_step": s}
        sizes.add(compare._stored_bytes(estimator))
    assert len(sizes) == 1


def test_a_searchs_refit_is_also_cached_as_the_chosen_estimators_own_row(small, cache):
    probe = clf.LinearProbeClassifier(folds=2, max_length=16)
    search = clf.HoldoutSearchClassifier(probe, "cs", ((0.01,), (10.0,)))
    budget = compare.Budget(32)
    searched = compare.run(search, small, budget)
    chosen = probe.set_params(cs=searched["details"]["chosen"])
    served = compare.run(chosen, small, budget)
    assert served["cached"] and served["estimator"] == "LinearProbeClassifier"
    assert served["params"]["cs"] == list(searched["details"]["chosen"]) and "chosen" not in served["details"]
    assert served["fit_seconds"] < searched["fit_seconds"]  # the refit alone, not the search
    fresh = compare.run(chosen, small, budget, cache=False)
    assert fresh["accuracy"] == served["accuracy"] and fresh["bytes_per_task"] == served["bytes_per_task"]
    assert len(list((cache / "results").glob("*.json"))) == 2


def test_plot_estimates_draws_one_point_per_name_and_series():
    from metalib.evaluate import accuracy_estimate

    a, b = accuracy_estimate([1, 1, 0, 1]), accuracy_estimate([0, 1, 0, 0])
    ax = compare.plot_estimates({"raw": [a, b], "calibrated": [b, a]}, ["t1", "t2"], baseline=0.5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t1", "t2"]
    labels = ax.get_legend_handles_labels()[1]
    assert set(labels) == {"majority class", "raw", "calibrated"}
    assert len(ax.lines) >= 1  # the baseline


def test_plot_draws_shows_every_draw_and_the_range():
    import pandas as pd

    frame = pd.DataFrame({"k": [0, 1, 1, 2, 2], "raw": [0.5, 0.6, 0.4, 0.7, 0.5], "cal": [0.5] * 5})
    ax = compare.plot_draws(frame, "k", ("raw", "cal"), baseline=0.55)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert len(ax.collections) == 4  # per column: the dots and the min-max band
    assert set(ax.get_legend_handles_labels()[1]) == {
        "raw (mean of draws)",
        "cal (mean of draws)",
        "majority class",
    }


def test_rows_keep_which_texts_were_right_and_pair_on_them(small, cache):
    majority = compare.run(clf.MajorityClassifier(), small, compare.Budget(32))
    probe = compare.run(clf.LabelDescriptionClassifier(max_length=16), small, compare.Budget(0))
    assert len(majority["correct"]) == 80 and set(majority["correct"]) <= {"0", "1"}
    assert majority["correct"].count("1") / 80 == pytest.approx(majority["accuracy"])
    diff = compare.paired_difference(probe, majority)
    assert diff.mean == pytest.approx(probe["accuracy"] - majority["accuracy"]) and diff.n == 80
    assert diff.low < diff.mean < diff.high
    assert compare.paired_difference(majority, majority).mean == 0
    with pytest.raises(ValueError, match="same test texts"):
        compare.paired_difference(probe, {**majority, "correct": "1", "n_test": 1})


def test_a_row_naming_a_built_model_is_keyed_by_that_build(small, cache, monkeypatch):
    from metalib import recipes

    monkeypatch.setattr(recipes, "encoder_source", lambda name: f"/cache/zoo/{name}-build1")
    student = clf.DistilledClassifier(
        clf.FrozenClassifier("minilm-l6-sentiment"), encoder="tiny-bert-pretrained"
    )
    assert compare._built_models(student) == {
        "minilm-l6-sentiment": "minilm-l6-sentiment-build1",
        "tiny-bert-pretrained": "tiny-bert-pretrained-build1",
    }
    first = compare._cache_path(student, small, compare.Budget(16))
    monkeypatch.setattr(recipes, "encoder_source", lambda name: f"/cache/zoo/{name}-build2")
    assert compare._cache_path(student, small, compare.Budget(16)) != first
    assert compare._built_models(clf.MajorityClassifier()) == {}
