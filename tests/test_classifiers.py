"""Every estimator of metalib.classifiers, on a few real Rotten Tomatoes snippets and MiniLM."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from metalib import classifiers as clf
from metalib import data
from metalib.methods.transfer import stratified_subset

TINY = dict(max_length=16)
TRAIN = dict(min_steps=3, epochs=1, batch_size=8, **TINY)
ESTIMATORS = {
    "majority": clf.MajorityClassifier(),
    "probe": clf.LinearProbeClassifier(folds=2, **TINY),
    "full": clf.FineTuneClassifier(**TRAIN),
    "lora": clf.FineTuneClassifier(adapter="lora", lr=1e-3, rank=2, **TRAIN),
    "ia3": clf.FineTuneClassifier(adapter="ia3", lr=1e-2, **TRAIN),
    "prompt": clf.FineTuneClassifier(adapter="prompt", lr=1e-2, virtual_tokens=4, **TRAIN),
    "bitfit": clf.FineTuneClassifier(adapter="bitfit", lr=1e-3, **TRAIN),
}
NEEDS_ENCODER = [name for name in ESTIMATORS if name != "majority"]


@pytest.fixture(scope="module")
def rows():
    splits = data.rotten_tomatoes(seed=0)
    train = stratified_subset(splits.train.labels, 16, seed=0)
    texts = [splits.train.texts[i] for i in train]
    labels = [["rotten", "fresh"][splits.train.labels[i]] for i in train]  # string classes
    return texts, labels, splits.test.texts[:12]


@pytest.fixture(scope="module")
def fitted(rows):
    texts, labels, _ = rows
    return {name: clone(estimator).fit(texts, labels) for name, estimator in ESTIMATORS.items()}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_keeps_the_parameters_and_drops_the_fit(name, fitted):
    copy = clone(fitted[name])
    assert copy.get_params() == ESTIMATORS[name].get_params()
    assert not hasattr(copy, "classes_")
    with pytest.raises(ValueError, match="not fitted"):
        copy.predict(["a text"])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fitted_estimator_predicts_probabilities_of_its_classes(name, fitted, rows):
    estimator, test = fitted[name], rows[2]
    assert estimator.classes_.tolist() == ["fresh", "rotten"]
    proba = estimator.predict_proba(test)
    assert proba.shape == (len(test), 2) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    predicted = estimator.predict(test)
    assert predicted.shape == (len(test),) and set(predicted) <= {"fresh", "rotten"}
    assert estimator.predict_proba([]).shape == (0, 2)
    assert estimator.fit_seconds_ >= 0
    assert (estimator.n_trainable_parameters_ == 0) == (name == "majority")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_same_seed_same_predictions_and_save_load_is_bit_identical(name, fitted, rows, tmp_path):
    texts, labels, test = rows
    proba = fitted[name].predict_proba(test)
    again = clone(ESTIMATORS[name]).fit(texts, labels)
    np.testing.assert_array_equal(again.predict_proba(test), proba)
    path = fitted[name].save(tmp_path / name)
    loaded = clf.TextClassifier.load(path)
    assert type(loaded) is type(fitted[name]) and loaded.get_params() == fitted[name].get_params()
    np.testing.assert_array_equal(loaded.predict_proba(test), proba)
    assert loaded.n_trainable_parameters_ == fitted[name].n_trainable_parameters_
    assert not list(path.glob("*.pkl")) and (path / "weights.safetensors").is_file()


def test_adapters_train_a_small_share_and_store_little(fitted, tmp_path):
    full = fitted["full"].n_trainable_parameters_
    assert full > 20_000_000  # MiniLM's 22.7M and the head
    for name in ("lora", "ia3", "prompt", "bitfit"):
        assert fitted[name].n_trainable_parameters_ < full / 100, name
        stored = (fitted[name].save(tmp_path / name) / "weights.safetensors").stat().st_size
        assert stored < 4 * full / 100, name  # float32 bytes of under 1% of the weights
    assert fitted["probe"].n_trainable_parameters_ == 384 + 1


BAD_INPUTS = [
    ([], [], ValueError, "empty"),
    ("one text", [1], TypeError, "wrap it as"),
    (["a", "b", "c"], [0, 1], ValueError, "3 texts but 2 labels"),
    (["a", "b"], [1, 1], ValueError, "one class only"),
    (["a", "b"], [0.5, 1.5], TypeError, "all ints or all strings"),
    (["a", "b"], [0, "pos"], TypeError, "all ints or all strings"),
    (["a", 3], [0, 1], TypeError, "must all be strings"),
]


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(("texts", "labels", "error", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_the_fix(name, texts, labels, error, message):
    with pytest.raises(error, match=message):
        clone(ESTIMATORS[name]).fit(texts, labels)


@pytest.mark.parametrize("name", NEEDS_ENCODER)
def test_unknown_encoder_name_is_a_value_error(name):
    estimator = clone(ESTIMATORS[name]).set_params(encoder="metalib-test/no-such-model")
    with pytest.raises(ValueError, match="unknown encoder 'metalib-test/no-such-model'"):
        estimator.fit(["good", "bad"], [1, 0])


def test_unknown_adapter_and_bad_saved_directories(tmp_path, fitted):
    with pytest.raises(ValueError, match="adapter='bogus'"):
        clf.FineTuneClassifier(adapter="bogus", **TRAIN).fit(["good", "bad"], [1, 0])
    with pytest.raises(FileNotFoundError, match="estimator.json"):
        clf.TextClassifier.load(tmp_path)
    path = fitted["majority"].save(tmp_path / "m")
    info = json.loads((path / "estimator.json").read_text())
    (path / "estimator.json").write_text(json.dumps(info | {"class": "Pickle"}))
    with pytest.raises(ValueError, match="unknown estimator class 'Pickle'"):
        clf.TextClassifier.load(path)


def test_estimators_work_inside_scikit_learn(rows):
    texts, labels, _ = rows
    scores = cross_val_score(clf.LinearProbeClassifier(folds=2, **TINY), texts, labels, cv=2)
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    lowercase = FunctionTransformer(lambda batch: [t.lower() for t in batch])
    pipeline = make_pipeline(lowercase, clf.MajorityClassifier()).fit(texts, labels)
    assert pipeline.score(texts, labels) == max(labels.count(c) for c in set(labels)) / len(labels)


def test_integer_labels_keep_their_type(rows):
    texts, labels, test = rows
    ints = [int(label == "fresh") for label in labels]
    majority = clf.MajorityClassifier().fit(texts, np.array(ints))
    assert majority.classes_.tolist() == [0, 1] and majority.predict(test).dtype.kind == "i"
