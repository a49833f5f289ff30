"""The project's own small log-mel model; ``commands/`` holds the bundled default model.

Importing this package imports neither torch nor transformers: the numpy front end is in
``logmel``; the transformers classes load on first use (see ``registration``).
"""

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "commands"
"""Directory of the bundled default commands model."""
