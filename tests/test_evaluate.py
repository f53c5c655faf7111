import pytest

from metalib.evaluate import (
    Estimate,
    accuracy_estimate,
    majority_baseline,
    mean_estimate,
    prediction_accuracy,
    wilson_interval,
)


def test_wilson_interval_matches_reference_values():
    # Reference: Wilson (1927) score interval, e.g. statsmodels proportion_confint(method="wilson").
    assert wilson_interval(80, 100) == pytest.approx((0.7112, 0.8666), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_wilson_interval_narrows_with_n_and_rejects_bad_input():
    wide, narrow = wilson_interval(50, 100), wilson_interval(500, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    with pytest.raises(ValueError, match="n must be"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="correct must be"):
        wilson_interval(11, 10)


def test_estimates():
    est = accuracy_estimate([True, False, True, True])
    assert (est.mean, est.n) == (0.75, 4) and est.low < 0.75 < est.high
    assert "0.750" in str(est) and "n=4" in str(est)
    runs = mean_estimate([0.70, 0.72, 0.74])
    assert runs.mean == pytest.approx(0.72)
    assert runs.high - runs.mean == pytest.approx(0.02 / 3**0.5 * 4.303, rel=1e-3)  # t(0.975, df=2)
    assert mean_estimate([0.5]) == Estimate(0.5, 0.5, 0.5, 1)
    with pytest.raises(ValueError):
        mean_estimate([])


def test_majority_baseline_applies_the_training_majority_to_test():
    # the training majority (1) is the test minority: the baseline is 1/4, not the test's own 3/4
    estimate = majority_baseline([1, 1, 0], [1, 0, 0, 0])
    assert (estimate.mean, estimate.n) == (0.25, 4)
    assert majority_baseline(["b", "a"], ["b", "b"]).mean == 1.0  # tie: the first label seen
    with pytest.raises(ValueError, match="non-empty"):
        majority_baseline([], [1])


def test_prediction_accuracy_accepts_arrays_and_checks_lengths():
    import numpy as np
    import torch

    assert prediction_accuracy(torch.tensor([1, 0, 1]), np.array([1, 1, 1])).mean == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        prediction_accuracy([1, 0], [1, 0, 1])


def test_estimate_comparisons_read_the_intervals():
    high, low = Estimate(0.8, 0.75, 0.85, 998), Estimate(0.7, 0.65, 0.75, 998)
    assert not high.above(low), "touching intervals overlap"
    assert Estimate(0.8, 0.76, 0.85, 998).above(low) and not low.above(high)
    assert Estimate(0.02, 0.01, 0.03, 9).sign() == 1 and Estimate(-0.02, -0.03, -0.01, 9).sign() == -1
    assert Estimate(0.02, 0.0, 0.04, 9).sign() == 0, "an interval that reaches zero shows no difference"
    assert high.plus_minus() == "0.800 ± 0.050"


def test_confident_mistakes_are_the_wrong_predictions_surest_first():
    from metalib.evaluate import confident_mistakes

    texts = ["right", "wrong, unsure", "wrong, sure", "wrong, surest"]
    probabilities = [[0.9, 0.1], [0.45, 0.55], [0.2, 0.8], [0.05, 0.95]]
    rows = confident_mistakes(texts, [0, 0, 0, 0], probabilities, n=2, class_names=["neg", "pos"])
    assert [r["text"] for r in rows] == ["wrong, surest", "wrong, sure"]
    assert rows[0] == {"text": "wrong, surest", "label": "neg", "predicted": "pos", "probability": 0.95}
    assert confident_mistakes(texts[:1], [0], probabilities[:1]) == []
    with pytest.raises(ValueError, match="texts"):
        confident_mistakes(texts, [0], probabilities)
