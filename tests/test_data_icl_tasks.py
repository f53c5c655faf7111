"""The MetaICL task pool: real WordNet and Rotten Tomatoes tasks, test tasks disjoint from training."""

import numpy as np
import pytest

from metalib import data
from metalib.data import icl_tasks


@pytest.fixture(scope="module")
def pool():
    return data.meta_icl_tasks(seed=0)


def test_the_pool_holds_the_documented_tasks(pool):
    train, test = pool["train"], pool["test"]
    assert len(train) == 40 + 2 and len(test) == 10 + 1
    assert [t.name for t in train[-2:]] == ["part of speech", "review or plot"]
    assert test[-1].name == "movie sentiment" and test[-1].answers == ("rotten", "fresh")
    for task in train + test:
        counts = np.bincount(task.labels)
        assert counts.max() == 64 and counts.min() >= 51, task.name  # 64 a class (noun.Tops has 51)
        assert all(len(text.split()) <= 40 for text in task.texts)
    assert all(len(t.classes) == 4 for t in train[:40] + test[:10])


def test_no_test_class_or_text_is_seen_in_training(pool):
    train_classes = {c for task in pool["train"] for c in task.classes}
    train_texts = {t for task in pool["train"] for t in task.texts}
    test_classes = {c for task in pool["test"] for c in task.classes}
    assert not test_classes & train_classes
    assert not {t for task in pool["test"] for t in task.texts} & train_texts
    assert test_classes >= {"rt.fresh", "rt.rotten"} and {"rt.plot", "rt.review"} <= train_classes
    supersenses = {c for c in test_classes if not c.startswith("rt.")}
    assert supersenses <= set(data.class_splits(seed=0)["test"])


def test_the_pool_is_a_function_of_its_seed(pool):
    again, other = data.meta_icl_tasks(seed=0), data.meta_icl_tasks(seed=1)
    assert again == pool
    assert [t.classes for t in other["train"][:40]] != [t.classes for t in pool["train"][:40]]


def test_check_disjoint_names_what_is_shared():
    a = data.TextTask("a", ("x", "y"), (0, 1), ("no", "yes"), ("c.no", "c.yes"))
    same_class = data.TextTask("b", ("u", "v"), (0, 1), ("no", "maybe"), ("c.no", "c.maybe"))
    same_text = data.TextTask("c", ("x", "w"), (0, 1), ("p", "q"), ("d.p", "d.q"))
    with pytest.raises(ValueError, match="test task 'b' has training classes"):
        data.check_disjoint([a], [same_class])
    with pytest.raises(ValueError, match="test task 'c' has 1 training texts"):
        data.check_disjoint([a], [same_text])
    data.check_disjoint([a], [data.TextTask("d", ("s", "t"), (0, 1), ("p", "q"), ("e.p", "e.q"))])


@pytest.mark.parametrize(
    ("texts", "labels", "answers", "classes", "message"),
    [
        (("x",), (0, 1), ("a", "b"), ("c.a", "c.b"), "1 texts but 2 labels"),
        (("x", "y"), (0, 1), ("a", "a"), ("c.a", "c.b"), "one distinct answer per class"),
        (("x", "y"), (0, 0), ("a", "b"), ("c.a", "c.b"), "every one of its 2 classes needs texts"),
    ],
)
def test_a_malformed_task_is_refused(texts, labels, answers, classes, message):
    with pytest.raises(ValueError, match=message):
        data.TextTask("t", texts, labels, answers, classes)


def test_answers_are_words_and_distinct_within_a_task():
    assert icl_tasks._answer_words(["noun.animal", "adv.all", "noun.Tops"]) == ("animal", "adverb", "top")
    assert icl_tasks._answer_words(["noun.cognition", "verb.cognition"]) == (
        "noun cognition",
        "verb cognition",
    )
    with pytest.raises(ValueError, match="ways=1"):
        icl_tasks.supersense_tasks(data.wordnet_supersenses(), ["noun.animal", "noun.food"], 1, 1, 4, 0)


def test_an_episode_is_k_demonstrations_then_the_query(pool):
    task = pool["test"][-1]
    demos, query = data.sample_episode(task, 3, np.random.default_rng(0))
    assert len(demos) == 3 and query not in demos and len(set(demos)) == 3
    prompt, answer = data.episode_prompt(task, demos, query)
    assert prompt.count("Input: ") == 4 and prompt.count("Output: ") == 3 and prompt.endswith("\nOutput:")
    assert prompt.startswith(f"Input: {task.texts[demos[0]]}\nOutput: {task.answers[task.labels[demos[0]]]}")
    assert answer == " " + task.answers[task.labels[query]]
    zero_shot, _ = data.episode_prompt(task, [], query)
    assert zero_shot == f"Input: {task.texts[query]}\nOutput:"
    with pytest.raises(ValueError, match="k=128"):
        data.sample_episode(task, len(task), np.random.default_rng(0))


def test_episode_prompts_take_the_tasks_in_turn(pool):
    tasks = pool["train"][:3]
    episodes = data.episode_prompts(tasks, k=2, n_episodes=7, seed=0)
    assert len(episodes) == 7 and episodes.tasks == (0, 1, 2, 0, 1, 2, 0)
    for prompt, answer, t in zip(episodes.prompts, episodes.answers, episodes.tasks, strict=True):
        assert prompt.count("Input: ") == 3 and answer.strip() in tasks[t].answers
    assert data.episode_prompts(tasks, k=2, n_episodes=7, seed=0) == episodes
    bare = data.episode_prompts(tasks, k=0, n_episodes=3, seed=0)  # multi-task: the query alone
    assert all(p.count("Input: ") == 1 for p in bare.prompts)
