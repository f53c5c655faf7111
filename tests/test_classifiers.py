"""Every estimator of metalib.classifiers, on a few real Rotten Tomatoes snippets and MiniLM."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from metalib import classifiers as clf
from metalib import data
from metalib.methods.transfer import stratified_subset

UNLABELLED = tuple(data.rotten_tomatoes(seed=0).train.texts[-24:])  # a transfer set without labels
TINY = dict(max_length=16)
TRAIN = dict(min_steps=3, epochs=1, batch_size=8, **TINY)
ESTIMATORS = {
    "majority": clf.MajorityClassifier(),
    "probe": clf.LinearProbeClassifier(folds=2, **TINY),
    "full": clf.FineTuneClassifier(**TRAIN),
    "lora": clf.FineTuneClassifier(adapter="lora", lr=1e-3, rank=2, **TRAIN),
    "ia3": clf.FineTuneClassifier(adapter="ia3", lr=1e-2, **TRAIN),
    "prompt tuning": clf.FineTuneClassifier(adapter="prompt", lr=1e-2, virtual_tokens=4, **TRAIN),
    "bitfit": clf.FineTuneClassifier(adapter="bitfit", lr=1e-3, **TRAIN),
    "setfit": clf.SetFitClassifier(max_pairs=16, batch_size=8, **TINY),
    "prototypes": clf.PrototypeClassifier(**TINY),
    "protonet": clf.PrototypeClassifier(head="protonet-wordnet", **TINY),
    "descriptions": clf.LabelDescriptionClassifier(classes=("rotten", "fresh"), **TINY),
    "zero-shot prompt": clf.PromptClassifier(classes=("rotten", "fresh"), batch_size=4),
    "in-context prompt": clf.PromptClassifier(classes=("rotten", "fresh"), shots=2, calibrate=False),
    "distilled": clf.DistilledClassifier(
        clf.LinearProbeClassifier(folds=2, **TINY), UNLABELLED, layers=(0,), **TRAIN
    ),
    "frozen": clf.FrozenClassifier("minilm-l6", classes=("rotten", "fresh"), **TINY),
    "distilled from a frozen teacher, no label": clf.DistilledClassifier(
        clf.FrozenClassifier("minilm-l6", classes=("rotten", "fresh"), **TINY),
        UNLABELLED,
        layers=None,
        random_init=True,
        **TRAIN,
    ),
    "hard labels, no teacher": clf.DistilledClassifier(alpha=0.0, layers=(1,), **TRAIN),
    "lr search": clf.HoldoutSearchClassifier(
        clf.FineTuneClassifier(adapter="bitfit", **TRAIN), "lr", (1e-4, 1e-2)
    ),
}
OWN_CLASSES = [
    "descriptions",
    "zero-shot prompt",
    "in-context prompt",
    "frozen",
    "distilled from a frozen teacher, no label",
]  # zero-shot or trained beforehand: classes from the parameters
TRAINS_NOTHING = [
    "majority",
    "prototypes",
    "protonet",
    "descriptions",
    "zero-shot prompt",
    "in-context prompt",
    "frozen",
]
MODEL_PARAMETER = {
    name: "model" if name.endswith(" prompt") or name == "frozen" else "encoder"
    for name in ESTIMATORS
    if name not in ("majority", "protonet", "lr search")  # ProtoNet's head refuses any encoder but MiniLM
}


@pytest.fixture(scope="module")
def rows():
    splits = data.rotten_tomatoes(seed=0)
    train = stratified_subset(splits.train.labels, 16, seed=0)
    texts = [splits.train.texts[i] for i in train]
    labels = [["rotten", "fresh"][splits.train.labels[i]] for i in train]  # string classes
    return texts, labels, splits.test.texts[:12]


@pytest.fixture(scope="module", autouse=True)
def quick_profile():
    """Built models (the ProtoNet head) in their quick recipes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("METALIB_PROFILE", "quick")
        yield


@pytest.fixture(scope="module")
def fitted(rows):
    texts, labels, _ = rows
    return {name: clone(estimator).fit(texts, labels) for name, estimator in ESTIMATORS.items()}


def test_the_matrix_covers_every_estimator_of_the_module():
    covered = {type(estimator) for estimator in ESTIMATORS.values()}
    defined = {c for c in clf._subclasses(clf.TextClassifier) if c.__module__ == clf.__name__}  # not tests'
    assert covered == defined, "add the new estimator to ESTIMATORS"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_keeps_the_parameters_and_drops_the_fit(name, fitted):
    copy = clone(fitted[name])
    assert clf.params_to_json(copy) == clf.params_to_json(ESTIMATORS[name])
    assert not hasattr(copy, "classes_")
    with pytest.raises(ValueError, match="not fitted"):
        copy.predict(["a text"])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fitted_estimator_predicts_probabilities_of_its_classes(name, fitted, rows):
    estimator, test = fitted[name], rows[2]
    assert estimator.classes_.tolist() == (
        ["rotten", "fresh"] if name in OWN_CLASSES else ["fresh", "rotten"]
    )
    proba = estimator.predict_proba(test)
    assert proba.shape == (len(test), 2) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    predicted = estimator.predict(test)
    assert predicted.shape == (len(test),) and set(predicted) <= {"fresh", "rotten"}
    assert estimator.predict_proba([]).shape == (0, 2)
    assert estimator.fit_seconds_ >= 0
    assert (estimator.n_trainable_parameters_ == 0) == (name in TRAINS_NOTHING)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_same_seed_same_predictions_and_save_load_is_bit_identical(name, fitted, rows, tmp_path):
    texts, labels, test = rows
    proba = fitted[name].predict_proba(test)
    again = clone(ESTIMATORS[name]).fit(texts, labels)
    np.testing.assert_array_equal(again.predict_proba(test), proba)
    path = fitted[name].save(tmp_path / name)
    loaded = clf.TextClassifier.load(path)
    assert type(loaded) is type(fitted[name])
    assert clf.params_to_json(loaded) == clf.params_to_json(fitted[name])
    np.testing.assert_array_equal(loaded.predict_proba(test), proba)
    assert loaded.n_trainable_parameters_ == fitted[name].n_trainable_parameters_
    assert not list(path.glob("*.pkl")) and (path / "weights.safetensors").is_file()


def test_adapters_train_a_small_share_and_store_little(fitted, tmp_path):
    full = fitted["full"].n_trainable_parameters_
    assert full > 20_000_000  # MiniLM's 22.7M and the head
    for name in ("lora", "ia3", "prompt tuning", "bitfit"):
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


BAD_INPUTS_OWN_CLASSES = [
    ("one text", ["fresh"], TypeError, "wrap it as"),
    (["a", "b", "c"], ["fresh", "rotten"], ValueError, "3 texts but 2 labels"),
    (["a", "b"], ["fresh", "good"], ValueError, "'good' are not among this estimator's classes"),
    (["a", "b"], [0, 1], ValueError, "0, 1 are not among"),
    (["a", 3], ["fresh", "rotten"], TypeError, "must all be strings"),
]


@pytest.mark.parametrize("name", [name for name in ESTIMATORS if name not in OWN_CLASSES])
@pytest.mark.parametrize(("texts", "labels", "error", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_the_fix(name, texts, labels, error, message):
    with pytest.raises(error, match=message):
        clone(ESTIMATORS[name]).fit(texts, labels)


@pytest.mark.parametrize("name", OWN_CLASSES)
@pytest.mark.parametrize(("texts", "labels", "error", "message"), BAD_INPUTS_OWN_CLASSES)
def test_zero_shot_estimators_refuse_labels_they_do_not_know(name, texts, labels, error, message):
    with pytest.raises(error, match=message):
        clone(ESTIMATORS[name]).fit(texts, labels)


def test_zero_shot_estimators_fit_on_nothing(fitted, rows):
    test = rows[2]
    for name in ("descriptions", "zero-shot prompt"):
        empty = clone(ESTIMATORS[name]).fit([], [])
        np.testing.assert_array_equal(empty.predict_proba(test), fitted[name].predict_proba(test))
    with pytest.raises(ValueError, match="shots=2 demonstrations need that many labelled texts; fit got 1"):
        clone(ESTIMATORS["in-context prompt"]).fit(["a fine film"], ["fresh"])
    demonstrations = fitted["in-context prompt"].demonstrations_
    assert len(demonstrations) == 2 and all(text in rows[0] for text, _ in demonstrations)


@pytest.mark.parametrize("name", MODEL_PARAMETER)
def test_unknown_model_name_is_a_value_error(name):
    parameter = MODEL_PARAMETER[name]
    estimator = clone(ESTIMATORS[name]).set_params(**{parameter: "metalib-test/no-such-model"})
    kind = "language model" if name.endswith(" prompt") else "encoder"
    with pytest.raises(ValueError, match=f"unknown {kind} 'metalib-test/no-such-model'"):
        estimator.fit(["good", "bad", "fine"], ["rotten", "fresh", "fresh"])


def test_bad_parameters_of_the_few_and_zero_shot_estimators():
    two = (["good", "bad"], ["fresh", "rotten"])
    with pytest.raises(ValueError, match="head='bogus'"):
        clf.PrototypeClassifier(head="bogus").fit(*two)
    with pytest.raises(ValueError, match="metric='manhattan'"):
        clf.PrototypeClassifier(metric="manhattan").fit(*two)
    with pytest.raises(ValueError, match="meta-trained on minilm-l6 vectors"):
        clf.PrototypeClassifier("tiny-bert-scratch", head="protonet-wordnet").fit(*two)
    with pytest.raises(ValueError, match="at least two classes"):
        clf.LabelDescriptionClassifier(descriptions=(("only one",),)).fit([], [])
    with pytest.raises(TypeError, match="one tuple of strings per class"):
        clf.LabelDescriptionClassifier(descriptions=("bad", "good")).fit([], [])
    with pytest.raises(ValueError, match="must name 2 distinct classes"):
        clf.LabelDescriptionClassifier(classes=("a", "a")).fit([], [])
    with pytest.raises(TypeError, match="all ints or all strings"):
        clf.PromptClassifier(classes=(0, "a")).fit([], [])


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


def test_the_distilled_student_keeps_its_layers_and_its_teacher_round_trips(fitted):
    student = fitted["distilled"]
    assert student.model_.encoder.config.num_hidden_layers == 1
    assert 0 < student.teacher_seconds_ < student.fit_seconds_
    assert student.n_trainable_parameters_ < fitted["full"].n_trainable_parameters_
    described = clf.params_to_json(student)
    assert described["teacher"] == {
        "class": "LinearProbeClassifier",
        "params": clf.params_to_json(student.teacher),
    }
    rebuilt = clf.estimator_from_json({"class": "DistilledClassifier", "params": described})
    assert clf.params_to_json(rebuilt) == described and isinstance(rebuilt.teacher, clf.LinearProbeClassifier)
    assert rebuilt.unlabelled == UNLABELLED  # tuples again, as given


def test_fine_tuning_reports_its_steps_and_training_state(fitted):
    full, lora = fitted["full"].fit_details(), fitted["lora"].fit_details()
    assert full["steps"] == lora["steps"] == 3  # min_steps: 16 labels in batches of 8 are 2 steps
    assert full["seconds_per_step"] > 0 and full["probe_C"] > 0
    # full fine-tuning keeps a gradient and two AdamW moments for every weight: four copies
    assert full["training_state_bytes"] > 3.9 * 4 * fitted["full"].n_trainable_parameters_
    assert lora["training_state_bytes"] < full["training_state_bytes"] / 3
    assert clf.MajorityClassifier().fit(["a", "b"], [0, 1]).fit_details() == {}


def test_setfit_trains_on_capped_pairs_and_pulls_a_class_together(rows, capsys):
    texts, labels, _ = rows
    setfit = clf.SetFitClassifier(max_pairs=48, batch_size=8, lr=1e-4, **TINY).fit(texts, labels)
    assert setfit.fit_details()["steps"] == 6 and setfit.fit_details()["pairs"] <= 48
    assert capsys.readouterr().out == "", "a fit prints nothing (no progress bars, no log lines)"
    same = np.equal.outer(np.array(labels), np.array(labels))
    off_diagonal = ~np.eye(len(labels), dtype=bool)

    def gap(encode):  # mean cosine similarity within a class less the mean across classes
        vectors = np.asarray(encode(texts))
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cos = vectors @ vectors.T
        return cos[same & off_diagonal].mean() - cos[~same].mean()

    untrained = clf.SetFitClassifier(**TINY)._build()
    assert gap(setfit.model_.encode) > gap(untrained.encode) + 0.02, "pairs of a class move closer"
    assert setfit.n_trainable_parameters_ > 2e7  # every weight of MiniLM, and the head


def test_the_search_chooses_on_held_out_labels_and_refits_on_all(fitted, rows):
    search = fitted["lr search"]
    details = search.fit_details()
    assert details["chosen"] in (1e-4, 1e-2) and search.best_estimator_.lr == details["chosen"]
    assert len(details["holdout_scores"]) == 2 and details["holdout_labels"] == 4  # 25% of 16
    assert search.best_estimator_.n_fit_labels_ == len(rows[0]) == search.n_fit_labels_
    assert details["steps"] == 3  # the refitted estimator's own details come along
    assert "lr from [0.0001, 0.01]" in search.selection and "probe C by cross-validation" in search.selection
    # the search's cost includes every candidate: more than the refit alone
    assert search.fit_seconds_ > search.best_estimator_.fit_seconds_


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (clf.HoldoutSearchClassifier(), "needs an estimator"),
        (clf.HoldoutSearchClassifier(clf.MajorityClassifier()), "MajorityClassifier has no parameter 'lr'"),
        (clf.HoldoutSearchClassifier(clf.FineTuneClassifier(), values=()), "values is empty"),
        (clf.HoldoutSearchClassifier(clf.FineTuneClassifier(), holdout=1.5), r"holdout must be a share"),
        (clf.HoldoutSearchClassifier(clf.FineTuneClassifier()), "at least 2 labels per class"),
    ],
)
def test_bad_searches_are_refused_with_the_fix(search, message):
    with pytest.raises(ValueError, match=message):
        search.fit(["dull", "fine", "great"], ["neg", "pos", "pos"])


def test_lp_ft_fits_its_probe_once_for_the_same_labels_and_counts_its_cost(rows):
    texts, labels, _ = rows
    clf._fitted_probe.cache_clear()
    first = clf.FineTuneClassifier(adapter="bitfit", lr=1e-3, **TRAIN).fit(texts, labels)
    second = clf.FineTuneClassifier(adapter="bitfit", lr=1e-2, **TRAIN).fit(texts, labels)
    info = clf._fitted_probe.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert second._reused_seconds_ > 0 and first._reused_seconds_ == 0
    assert second.fit_seconds_ > second._reused_seconds_  # the reused probe's seconds are counted
    assert first.fit_details()["probe_C"] == second.fit_details()["probe_C"]


def test_minilm_vectors_are_embedded_once_per_process_and_charged_at_their_cost(rows, monkeypatch):
    from metalib import embeddings

    texts, labels, test = rows
    clf._VECTORS.clear()
    embedded = []
    real = embeddings.embed_texts

    def counting(model, tokenizer, batch, **kwargs):
        embedded.append(len(batch))
        return real(model, tokenizer, batch, **kwargs)

    monkeypatch.setattr(embeddings, "embed_texts", counting)
    owed = clf._owed_seconds
    first = clf.LinearProbeClassifier(folds=2, **TINY).fit(texts[:12], labels[:12])
    first_owed, owed = clf._owed_seconds - owed, clf._owed_seconds
    second = clf.LinearProbeClassifier(folds=2, **TINY).fit(texts, labels)
    second_owed = clf._owed_seconds - owed
    assert embedded == [12, 4]  # the second fit embeds only its 4 new texts
    assert first_owed == 0 and second_owed > 0
    assert second.fit_seconds_ > second_owed
    memo = clf._VECTORS["minilm-l6", TINY["max_length"]]
    model, tokenizer = second._encoder
    together = real(model, tokenizer, texts, max_length=TINY["max_length"]).numpy()
    np.testing.assert_allclose(np.stack([memo[t][0] for t in texts]), together, atol=1e-5)
    first.predict(test)
    assert embedded[-1] == len(test) and first.predict_seconds_ > 0
    second.predict(test)  # the test set again: nothing embedded, its embedding seconds charged
    assert len(embedded) == 3 and second.predict_seconds_ >= sum(memo[t][1] for t in test)
    search = clf.HoldoutSearchClassifier(clf.LinearProbeClassifier(folds=2, **TINY), "cs", ((1.0,),))
    search.fit(texts, labels).predict(test)  # delegates: the inner probe's charge counts too
    assert len(embedded) == 3 and search.predict_seconds_ >= sum(memo[t][1] for t in test)
    owed = clf._owed_seconds
    clf.LinearProbeClassifier(folds=2, max_length=12).fit(texts, labels)  # another key
    assert embedded[-1] == len(texts) and clf._owed_seconds == owed
    monkeypatch.setattr(clf, "_VECTORS_LIMIT", 8)
    clf.LinearProbeClassifier(folds=2, **TINY).fit(texts, labels)  # over the limit: starts afresh
    assert embedded[-1] == len(texts) and len(clf._VECTORS["minilm-l6", TINY["max_length"]]) == 16
    assert clf.LinearProbeClassifier(folds=2, **TINY).fit(texts, labels).predict(test).shape == (12,)


def test_lora_alpha_sets_the_scale_of_the_update(rows):
    texts, labels, _ = rows
    default = clf.FineTuneClassifier(adapter="lora", rank=2, **TRAIN)._build(2)[0]
    scaled = clf.FineTuneClassifier(adapter="lora", rank=2, lora_alpha=16, **TRAIN)._build(2)[0]

    def scaling(model):
        return {m.scaling["default"] for m in model.modules() if hasattr(m, "lora_A") and m.scaling}

    assert scaling(default) == {2.0} and scaling(scaled) == {8.0}  # alpha / r: 2r / r, 16 / 2


def test_the_distilled_students_options(fitted, rows):
    texts, labels, test = rows
    no_label = fitted["distilled from a frozen teacher, no label"]
    assert no_label.n_fit_labels_ == len(texts) and no_label.teacher_seconds_ > 0
    assert no_label.model_.encoder.config.num_hidden_layers == 6  # layers=None: all of MiniLM's
    unlabelled_only = clone(ESTIMATORS["distilled from a frozen teacher, no label"]).fit([], [])
    assert unlabelled_only.n_fit_labels_ == 0 and unlabelled_only.classes_.tolist() == ["rotten", "fresh"]
    hard = fitted["hard labels, no teacher"]
    assert hard.teacher_seconds_ == 0 and hard.model_.encoder.config.num_hidden_layers == 1
    copied, _ = clf.DistilledClassifier(layers=(1,)).build_student(2)
    minilm, _ = clf._load_encoder("minilm-l6", device="cpu")
    for key, value in copied.encoder.encoder.layer[0].state_dict().items():
        assert torch.equal(value, minilm.encoder.layer[1].state_dict()[key]), key
    fresh, _ = clf.DistilledClassifier(layers=(1,), random_init=True).build_student(2)
    assert not torch.equal(
        fresh.encoder.embeddings.word_embeddings.weight, minilm.embeddings.word_embeddings.weight
    )


def test_the_teacher_is_fitted_once_per_process_for_the_same_texts(rows):
    texts, labels, _ = rows
    student = clf.DistilledClassifier(clf.MajorityClassifier(), layers=(0,), **TRAIN)
    first = clone(student).fit(texts, labels)
    hits = clf._teacher_log_probs.cache_info().hits
    second = clone(student).set_params(seed=1).fit(texts, labels)
    assert clf._teacher_log_probs.cache_info().hits == hits + 1
    assert second.teacher_seconds_ == first.teacher_seconds_ and second.fit_seconds_ >= first.teacher_seconds_


def test_bad_distillation_settings_say_what_to_change(rows, fitted, tmp_path):
    texts, labels, _ = rows
    with pytest.raises(ValueError, match="in \\[0, 1\\]; got 1.5"):
        clf.DistilledClassifier(alpha=1.5, **TRAIN).fit(texts, labels)
    with pytest.raises(ValueError, match="needs a label for every transfer text"):
        clf.DistilledClassifier(unlabelled=UNLABELLED, alpha=0.5, **TRAIN).fit(texts, labels)
    frozen = clf.FrozenClassifier("minilm-l6", classes=("rotten", "fresh"), **TINY)
    with pytest.raises(ValueError, match="nothing to distil on"):
        clf.DistilledClassifier(frozen, **TRAIN).fit([], [])
    ints = [int(label == "fresh") for label in labels]
    with pytest.raises(ValueError, match="0, 1 are not among"):
        clf.DistilledClassifier(frozen, **TRAIN).fit(texts, ints)
    two_outputs = fitted["frozen"]
    two_outputs.model_.save_pretrained(tmp_path / "two")
    two_outputs.tokenizer_.save_pretrained(tmp_path / "two")
    with pytest.raises(ValueError, match="does not have 3 outputs"):
        clf.FrozenClassifier(str(tmp_path / "two"), classes=(0, 1, 2)).fit([], [])
