"""MetaICL: meta-training on k-shot episodes, and scoring test episodes against their task's answers."""

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from metalib import zoo
from metalib.data.icl_tasks import EpisodePrompts, TextTask, episode_prompts
from metalib.methods import meta_icl
from metalib.methods.prompting import score_labels
from metalib.train import TrainConfig

COLOURS = TextTask(
    name="colour",
    texts=("the sky at noon", "fresh grass", "a ripe tomato", "the sea", "a lime", "a fire truck"),
    labels=(0, 1, 2, 0, 1, 2),
    answers=("blue", "green", "red"),
    classes=("colour.blue", "colour.green", "colour.red"),
)
SIZES = TextTask(
    name="size",
    texts=("an elephant", "an ant", "a whale", "a grain of sand", "a mountain", "a flea"),
    labels=(0, 1, 0, 1, 0, 1),
    answers=("big", "small"),
    classes=("size.big", "size.small"),
)


@pytest.fixture(scope="module")
def smollm2():
    return zoo.load_causal_lm("smollm2-135m-instruct")


def test_episode_correct_is_the_argmax_over_each_tasks_own_answers(smollm2):
    model, tokenizer = smollm2
    tasks = [COLOURS, SIZES]
    episodes = episode_prompts(tasks, k=2, n_episodes=6, seed=0)
    correct = meta_icl.episode_correct(model, tokenizer, tasks, episodes, batch_size=4)
    assert correct.shape == (6,) and correct.dtype == bool
    for i in (0, 1):  # one episode of each task, scored alone
        task = tasks[episodes.tasks[i]]
        scores = score_labels(model, tokenizer, [episodes.prompts[i]], [[" " + a] for a in task.answers])
        truth = task.answers.index(episodes.answers[i].strip())
        assert correct[i] == (int(scores.argmax()) == truth)
    assert not model.training


def test_episode_correct_follows_the_true_answer(smollm2):
    model, tokenizer = smollm2
    tasks = [SIZES]
    prompt = "Input: an elephant\nOutput: big\n\nInput: a mountain\nOutput:"
    right = EpisodePrompts((prompt,), (" big",), (0,))
    wrong = EpisodePrompts((prompt,), (" small",), (0,))
    a = meta_icl.episode_correct(model, tokenizer, tasks, right)
    b = meta_icl.episode_correct(model, tokenizer, tasks, wrong)
    assert a[0] != b[0]  # the same scores judged against the other answer


def test_meta_train_lowers_the_answer_loss_and_k0_trains_on_queries_alone():
    torch.manual_seed(0)
    model, tokenizer = zoo.load_causal_lm("smollm2-135m-instruct")  # its own copy: LoRA changes it
    lora = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"]))
    config = TrainConfig(max_steps=4, lr=2e-3, log_every=1, progress=False)
    trainer = meta_icl.meta_train(lora, tokenizer, [COLOURS, SIZES], config, k=2, n_episodes=8, batch_size=2)
    losses = trainer.history.steps["loss"]
    assert len(losses) == 4 and losses.iloc[-1] < losses.iloc[0]
    queries = episode_prompts([COLOURS, SIZES], k=0, n_episodes=4, seed=0)
    assert all(p.count("Input:") == 1 for p in queries.prompts)  # what k=0 trains on
    assert np.isfinite(losses).all()
