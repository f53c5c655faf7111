"""Small helpers for the chapters' notebooks (rendering, not computing).

Example:
    >>> from metalib import evaluate
    >>> print(source_markdown(evaluate.wilson_interval).splitlines()[0])
    ```python
"""

from __future__ import annotations

import inspect
from typing import Any


def source_markdown(obj: Any) -> str:
    """The source of a metalib function or class as a fenced Markdown code block."""
    return f"```python\n{inspect.getsource(obj).rstrip()}\n```"


def show_source(obj: Any) -> Any:
    """Display the source of ``obj`` in a notebook, so a chapter shows the library's code
    instead of pasting a second copy that could drift."""
    from IPython.display import Markdown

    return Markdown(source_markdown(obj))


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` for a number computed in a notebook, with NumPy scalars turned into Python ones.

    NumPy 2 shows a scalar as ``np.float64(0.63)``, which myst-nb cannot format in a
    ``{glue:text}`name:.3f``` role; ``value.item()`` gives the plain ``0.63``.
    """
    from myst_nb import glue as myst_glue

    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    myst_glue(name, value, display=display)
