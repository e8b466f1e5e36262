"""sail-rl: RL post-training for SAIL-VL vision-language models.

Importing the package registers the SAIL-VL model with transformers' Auto classes, so
`AutoModelForImageTextToText.from_pretrained(dir)` works without trust_remote_code.
"""

import os as _os

_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sail_rl import model as _model  # noqa: E402,F401  (registers the Auto classes)

__version__ = "0.1.0"
