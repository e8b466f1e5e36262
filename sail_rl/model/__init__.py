"""The SAIL-VL model, its processor and presets; registered with transformers' Auto classes."""

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor

from sail_rl.model.configuration import SailVLConfig
from sail_rl.model.image_processing import SailVLImageProcessor
from sail_rl.model.modeling import SailVLForConditionalGeneration, check_image_tokens, pixel_shuffle
from sail_rl.model.processing import SailVLProcessor, render_chat

AutoConfig.register("sail_vl", SailVLConfig, exist_ok=True)
AutoModelForImageTextToText.register(SailVLConfig, SailVLForConditionalGeneration, exist_ok=True)
AutoImageProcessor.register(SailVLConfig, slow_image_processor_class=SailVLImageProcessor, exist_ok=True)
AutoProcessor.register(SailVLConfig, SailVLProcessor, exist_ok=True)

__all__ = [
    "SailVLConfig", "SailVLForConditionalGeneration", "SailVLImageProcessor", "SailVLProcessor",
    "render_chat", "check_image_tokens", "pixel_shuffle",
]
