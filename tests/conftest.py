"""Unit tests run offline, as CI does: nothing may reach a model hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
