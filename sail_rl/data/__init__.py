"""MathVista-format data: records, loading, prompts, synthetic tasks and pass-rate filtering.

    from sail_rl.data import load_samples, build_prompt
    samples = load_samples("data/synth/data.jsonl")
    messages, images = build_prompt(samples[0], mode="think")
"""

from sail_rl.data.mathvista import (
    ANSWER_TYPES,
    QUESTION_TYPES,
    DataConfig,
    MathVistaSample,
    choice_letter,
    load_samples,
    rewrite_mc_to_free_form,
    sample_to_record,
    write_samples,
)
from sail_rl.data.prompts import build_prompt, question_text

__all__ = [
    "ANSWER_TYPES",
    "QUESTION_TYPES",
    "DataConfig",
    "MathVistaSample",
    "build_prompt",
    "choice_letter",
    "load_samples",
    "question_text",
    "rewrite_mc_to_free_form",
    "sample_to_record",
    "write_samples",
]
