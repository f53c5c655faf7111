"""Draw the book's diagrams into ``book/figures`` as SVG (and PNG with ``--png``, to look at).

    .venv/bin/python tools/draw_figures.py [--png]

The diagrams explain structure, not results, so they are drawn once and committed:
``peft_placement.svg`` (chapter 4: where LoRA, IA3, prompt tuning, prefix tuning and BitFit act in
a transformer block) and ``maml_loop.svg`` (chapter 6: class-disjoint task splits, an episode, and
MAML's inner and outer loop).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "book" / "figures"
plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "font.family": "DejaVu Sans"})
GREY, INK = "#e2e8f0", "#1a202c"
METHOD = {  # one colour per method, the same in both legends
    "LoRA": "#dd6b20",
    "IA3": "#2f855a",
    "prompt tuning": "#6b46c1",
    "prefix tuning": "#c53030",
    "BitFit": "#2b6cb0",
}


def box(ax, x, y, w, h, text, color=GREY, edge="#4a5568", size=10, weight="normal"):
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec=edge, lw=1)
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", size=size, weight=weight, color=INK)


def arrow(ax, start, end, color="#4a5568", style="-|>", lw=1.2, rad=0.0):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=11,
            color=color,
            lw=lw,
            connectionstyle=f"arc3,rad={rad}",
        )
    )


def tag(ax, x, y, text, method, ha="left"):
    ax.text(
        x,
        y,
        text,
        ha=ha,
        va="center",
        size=9,
        color="white",
        weight="bold",
        bbox=dict(boxstyle="round,pad=0.25", fc=METHOD[method], ec="none"),
    )


def peft_placement() -> plt.Figure:
    """One encoder block, bottom to top, with the parameters each PEFT method trains."""
    fig, ax = plt.subplots(figsize=(9, 7.2))
    ax.set(xlim=(0, 10), ylim=(0, 10.6))
    ax.axis("off")
    # input
    box(ax, 2.6, 0.3, 3.6, 0.6, "token + position embeddings")
    tag(ax, 6.4, 0.6, "prompt tuning: learned vectors prepended to the input", "prompt tuning")
    # the block
    ax.add_patch(
        FancyBboxPatch(
            (0.9, 1.35), 7.0, 7.6, boxstyle="round,pad=0.05", fc="none", ec="#a0aec0", ls="--", lw=1
        )
    )
    ax.text(1.05, 8.75, "one of L blocks", size=9, color="#4a5568", style="italic")
    # attention: Q, K, V projections
    for i, (name, x) in enumerate((("$W_Q$", 1.6), ("$W_K$", 3.6), ("$W_V$", 5.6))):
        box(ax, x, 1.9, 1.4, 0.6, name, size=11)
        arrow(ax, (4.4, 0.9), (x + 0.7, 1.9))
        box(ax, x + 0.25, 3.0, 0.9, 0.45, "QKV"[i], color="white", size=10)
        arrow(ax, (x + 0.7, 2.5), (x + 0.7, 3.0))
    tag(ax, 1.5, 2.75, "LoRA: + BA", "LoRA", ha="right")
    tag(ax, 7.1, 2.75, "LoRA: + BA", "LoRA")
    tag(ax, 4.35, 3.72, "IA3: ⊙ $l_k$", "IA3", ha="right")
    tag(ax, 6.35, 3.72, "IA3: ⊙ $l_v$", "IA3", ha="right")
    tag(ax, 8.05, 3.9, "prefix tuning: learned keys\nand values added at every block", "prefix tuning")
    box(ax, 1.6, 4.2, 5.4, 0.65, r"softmax$(QK^\top/\sqrt{d_k})\,V$, heads joined by $W_O$")
    for x in (2.3, 4.3, 6.3):
        arrow(ax, (x, 3.45), (x, 4.2))
    box(ax, 2.6, 5.2, 3.4, 0.5, "add & layer norm")
    arrow(ax, (4.3, 4.85), (4.3, 5.2))
    # feed-forward
    box(ax, 2.1, 6.05, 4.4, 0.6, r"$W_1$: $d \to d_{\mathrm{ff}}$, GELU")
    tag(ax, 6.7, 6.35, "IA3: ⊙ $l_{\\mathrm{ff}}$ on the $d_{\\mathrm{ff}}$ hidden units", "IA3")
    box(ax, 2.1, 7.0, 4.4, 0.55, r"$W_2$: $d_{\mathrm{ff}} \to d$")
    box(ax, 2.6, 7.95, 3.4, 0.5, "add & layer norm")
    for y0, y1 in ((5.7, 6.05), (6.65, 7.0), (7.55, 7.95)):
        arrow(ax, (4.3, y0), (4.3, y1))
    tag(ax, 0.95, 9.25, "BitFit: every bias term of every block, nothing else", "BitFit")
    # head
    box(ax, 2.6, 9.75, 3.4, 0.6, "mean pooling → linear head", color="#fefcbf")
    arrow(ax, (4.3, 8.45), (4.3, 9.75))
    ax.text(
        6.2,
        10.05,
        "trained by every method\n(and full fine-tuning trains all)",
        size=9,
        va="center",
        color="#4a5568",
    )
    return fig


def maml_loop() -> plt.Figure:
    """Class-disjoint splits and one episode (left); MAML's inner and outer loop (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.8))
    for ax in (left, right):
        ax.set(xlim=(0, 10), ylim=(0, 10))
        ax.axis("off")
    # left: classes split once, episodes drawn inside one split
    left.text(0.2, 9.6, "Classes are split once, never shared", size=11, weight="bold")
    splits = (
        ("meta-train", 0.2, 4.6, "#bee3f8"),
        ("meta-val", 5.0, 2.3, "#fefcbf"),
        ("meta-test", 7.5, 2.3, "#fed7d7"),
    )
    for name, x, w, color in splits:
        box(left, x, 7.5, w, 1.5, "", color=color)
        left.text(x + w / 2, 8.55, f"{name}\nclasses", ha="center", va="center", size=9, weight="bold")
        n = round(w / 0.55)
        for i in range(n):
            left.add_patch(
                plt.Circle((x + 0.3 + i * (w - 0.6) / max(n - 1, 1), 7.8), 0.14, fc="white", ec="#4a5568")
            )
    left.text(0.2, 6.6, "An episode (task): N classes of one split", size=11, weight="bold")
    arrow(left, (2.5, 7.45), (2.5, 6.9))
    box(left, 0.3, 3.4, 4.3, 2.6, "", color="#ebf8ff")
    left.text(2.45, 5.55, "support set S", ha="center", weight="bold", size=10)
    left.text(2.45, 4.5, "K labelled examples\nper class:\nadapt on these", ha="center", size=9)
    box(left, 5.2, 3.4, 4.3, 2.6, "", color="#f0fff4")
    left.text(7.35, 5.55, "query set Q", ha="center", weight="bold", size=10)
    left.text(
        7.35, 4.5, "other examples of\nthe same N classes:\nscore the adapted model", ha="center", size=9
    )
    left.text(
        0.3,
        2.6,
        "Meta-training draws episodes from meta-train classes;\n"
        "meta-val episodes choose the checkpoint kept;\n"
        "the reported accuracy is the mean over fixed meta-test\n"
        "episodes, with its 95% interval.",
        size=9,
        va="top",
    )
    # right: the loop
    right.text(0.2, 9.6, "MAML: adapt on S, score on Q, update the start", size=11, weight="bold")
    box(right, 3.6, 7.5, 2.8, 1.0, r"start $\theta$", color="#fefcbf", size=12)
    box(
        right,
        0.1,
        4.3,
        4.5,
        1.7,
        "inner loop, per task\n"
        + r"$\theta' = \theta - \alpha\nabla_\theta L_S(\theta)$"
        + "\n(a few SGD steps on S)",
        size=9.5,
    )
    box(right, 5.6, 4.3, 4.2, 1.7, "query loss\n" + r"$L_Q(\theta')$" + "\nof the adapted model", size=9.5)
    arrow(right, (4.2, 7.5), (2.4, 6.0))
    arrow(right, (4.6, 5.15), (5.6, 5.15))
    arrow(right, (7.7, 6.0), (5.9, 7.5), color="#c53030", lw=1.6)
    right.text(
        7.4,
        7.0,
        "outer loop, over a\nmeta-batch of tasks\n"
        + r"$\theta \leftarrow \theta - \beta \sum \nabla_\theta L_Q(\theta')$",
        size=9.5,
        color="#c53030",
    )
    right.text(
        0.3,
        2.6,
        "The outer gradient flows through the inner step:\n"
        r"$\nabla_\theta L_Q(\theta') = "
        r"(I - \alpha \nabla^2_\theta L_S(\theta))\,\nabla_{\theta'} L_Q(\theta')$"
        "\nFirst-order MAML drops the Hessian term; ProtoNet\n"
        "replaces the inner loop by the class means of the\nsupport embeddings.",
        size=9,
        va="top",
    )
    return fig


def main(argv: list[str]) -> int:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name, draw in (("peft_placement", peft_placement), ("maml_loop", maml_loop)):
        fig = draw()
        fig.savefig(FIGURES / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})
        if "--png" in argv:
            fig.savefig(f"/tmp/{name}.png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {FIGURES / name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
