"""metalib: the small library behind *Meta-Learning for Language Models — Methods and Practice*.

``import metalib`` is light: it imports no torch, transformers or learn2learn. Import the
submodules you need (``metalib.runtime``, ``metalib.zoo``, ``metalib.data``, ``metalib.train``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
