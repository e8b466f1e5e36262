"""The SAIL-VL model, its processor and presets; registered with transformers' Auto classes."""

import sys

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageTextToText, AutoProcessor

from sail_rl.model.configuration import SailVLConfig
from sail_rl.model.image_processing import SailVLImageProcessor
from sail_rl.model.modeling import SailVLForConditionalGeneration, SailVLModel, check_image_tokens
from sail_rl.model.processing import SailVLProcessor, render_chat

AutoConfig.register("sail_vl", SailVLConfig, exist_ok=True)
AutoModel.register(SailVLConfig, SailVLModel, exist_ok=True)
AutoModelForImageTextToText.register(SailVLConfig, SailVLForConditionalGeneration, exist_ok=True)
AutoImageProcessor.register(SailVLConfig, slow_image_processor_class=SailVLImageProcessor, exist_ok=True)
AutoProcessor.register(SailVLConfig, SailVLProcessor, exist_ok=True)
# vLLM's Transformers backend resolves an architecture by name on the transformers module. Set on the
# module object in sys.modules now: importing the Auto classes above can replace the lazy module object.
for _cls in (SailVLConfig, SailVLModel, SailVLForConditionalGeneration):
    setattr(sys.modules["transformers"], _cls.__name__, _cls)

__all__ = [
    "SailVLConfig", "SailVLModel", "SailVLForConditionalGeneration", "SailVLImageProcessor", "SailVLProcessor",
    "render_chat", "check_image_tokens",
]
