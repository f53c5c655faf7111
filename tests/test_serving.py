"""AdapterServer: two LoRA estimators served from one MiniLM, on real sentiment and WordNet rows."""

import numpy as np
import pytest

from metalib import classifiers as clf
from metalib import data, zoo
from metalib.methods.transfer import stratified_subset
from metalib.serving import AdapterServer

LORA = dict(adapter="lora", lr=1e-3, rank=2, min_steps=3, epochs=1, batch_size=8, max_length=16)
SUPERSENSES = ("noun.animal", "noun.food", "verb.motion")


@pytest.fixture(scope="module")
def tasks():
    splits = data.rotten_tomatoes(seed=0)
    rows = stratified_subset(splits.train.labels, 16, seed=0)
    sentiment = ([splits.train.texts[i] for i in rows], [splits.train.labels[i] for i in rows])
    wordnet = data.wordnet_supersenses()
    picked = [i for c in SUPERSENSES for i in [j for j, y in enumerate(wordnet.labels) if y == c][:6]]
    supersense = ([wordnet.glosses[i] for i in picked], [wordnet.labels[i] for i in picked])
    fitted = {
        "sentiment": clf.FineTuneClassifier(**LORA).fit(*sentiment),
        "supersense": clf.FineTuneClassifier(**LORA).fit(*supersense),
    }
    return fitted, splits.test.texts[:10], [wordnet.glosses[i] for i in range(5)]


def test_one_encoder_answers_as_each_estimator_does(tasks):
    fitted, reviews, glosses = tasks
    server = AdapterServer(fitted)
    for task, texts in (("sentiment", reviews), ("supersense", glosses), ("sentiment", reviews)):
        np.testing.assert_allclose(
            server.predict_proba(task, texts), fitted[task].predict_proba(texts), rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(server.predict(task, texts), fitted[task].predict(texts))
    assert set(server.predict("supersense", glosses)) <= set(SUPERSENSES)
    sizes = server.parameter_bytes()
    lora = 6 * 2 * 2 * (384 + 384) * 4  # 6 layers, query and value, rank 2, float32
    assert sizes["sentiment"] == lora + (384 + 1) * 2 * 4 and sizes["supersense"] == lora + (384 + 1) * 3 * 4
    assert sizes["base"] > 80e6  # MiniLM's 22.7M float32 weights


def test_bad_servers_are_refused(tasks):
    fitted, reviews, _ = tasks
    with pytest.raises(ValueError, match="at least one"):
        AdapterServer({})
    full = clf.FineTuneClassifier(min_steps=1, epochs=1, max_length=8)
    with pytest.raises(ValueError, match="adapter='lora'"):
        AdapterServer({"full": full})
    with pytest.raises(ValueError, match="not fitted"):
        AdapterServer({"new": clf.FineTuneClassifier(**LORA)})
    other = clf.FineTuneClassifier(**{**LORA, "encoder": str(zoo.minilm_path())})  # the same, named apart
    other.fit(["good", "bad", "fine", "dull"], [1, 0, 1, 0])
    with pytest.raises(ValueError, match="different encoders"):
        AdapterServer({"a": fitted["sentiment"], "b": other})
    with pytest.raises(ValueError, match="unknown task 'topic'"):
        AdapterServer(fitted).predict("topic", reviews)
