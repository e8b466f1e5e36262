"""The optional LLM answer extractor, MathVista style (off by default).

Rules run first (`rewards.extract_answer`, read by `rewards.grader`); only a response whose
answer the rules cannot read goes to an LLM with five in-context examples, one per answer
kind MathVista has: an integer, a float with one decimal, a float with two decimals, a list
and an option letter. The LLM returns only the extracted answer, which the same grader
then scores. The client is any `Callable[[list[str]], list[str | None]]` (prompts ->
completions); `judge_extractor` builds one on `rewards.judge.JudgeClient` (an
OpenAI-compatible endpoint: retries, concurrency, cache), set by the recipe key
`eval.llm_extractor`.
"""

from __future__ import annotations

from typing import Callable, Optional

from sail_rl.data.mathvista import LETTERS, MathVistaSample

LLMExtractor = Callable[[list[str]], list[Optional[str]]]  # prompts [batch] -> completions [batch]

TASK = "Read the examples below. Then extract the final answer from the last model response and write it after 'Extracted answer:'."

# (hint, question, model response, extracted answer): MathVista's five reference examples.
EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.",
        "Which number is missing?",
        "The number missing in the sequence is 14.",
        "14",
    ),
    (
        "Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
        "What is the fraction of females facing the camera?",
        "The fraction of females facing the camera is 0.6, which means that six out of ten females in the group are facing the camera.",
        "0.6",
    ),
    (
        "Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
        "How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)",
        "Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.",
        "1.45",
    ),
    (
        "Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.",
        "Between which two years does the line graph saw its maximum peak?",
        "The line graph saw its maximum peak between 2007 and 2008.",
        "[2007, 2008]",
    ),
    (
        "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
        "What fraction of the shape is blue?\nChoices: (A) 3/11 (B) 8/11 (C) 6/11 (D) 3/5",
        "The correct answer is (B) 8/11.",
        "B",
    ),
)


def mathvista_hint(sample: MathVistaSample) -> str:
    """MathVista's answer-format hint for a sample (the same wording as the examples).

    >>> s = MathVistaSample(pid="1", question="q", image="x", answer="1.5", question_type="free_form",
    ...                     answer_type="float", precision=1)
    >>> mathvista_hint(s)
    'Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.'
    """
    if sample.question_type == "multi_choice":
        return EXAMPLES[4][0]
    if sample.answer_type == "integer":
        return EXAMPLES[0][0]
    if sample.answer_type == "float":
        return EXAMPLES[2][0] if sample.precision == 2 else EXAMPLES[1][0]
    if sample.answer_type == "list":
        return EXAMPLES[3][0]
    return "Please answer the question and provide the final answer at the end."


def _block(hint: str, question: str, response: str, extracted: str) -> str:
    return f"Hint: {hint}\nQuestion: {question}\nModel response: {response}\nExtracted answer: {extracted}"


def build_extraction_prompt(sample: MathVistaSample, response: str) -> str:
    """The full extractor prompt: task line, the five examples, then this sample, ending in
    'Extracted answer:' for the LLM to complete."""
    question = sample.question
    if sample.question_type == "multi_choice" and sample.choices:
        question += "\nChoices: " + " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(sample.choices))
    parts = [TASK] + [_block(*example) for example in EXAMPLES]
    parts.append(_block(mathvista_hint(sample), question, response.strip(), "").rstrip())
    return "\n\n".join(parts)


def parse_extraction(completion: Optional[str]) -> Optional[str]:
    """The extracted answer in a completion: its first line, without an 'Extracted answer:' label.

    >>> parse_extraction(" 7\\n(because ...)"), parse_extraction("Extracted answer: B"), parse_extraction("  ")
    ('7', 'B', None)
    """
    if not completion or not completion.strip():
        return None
    first = completion.strip().splitlines()[0].strip()
    if first.lower().startswith("extracted answer:"):
        first = first.split(":", 1)[1].strip()
    return first or None


def llm_extract_many(extractor: LLMExtractor, samples: list[MathVistaSample], responses: list[str]) -> list[Optional[str]]:
    """One extractor call for a batch: the answer the LLM reads in each response, or None."""
    if not samples:
        return []
    prompts = [build_extraction_prompt(s, r) for s, r in zip(samples, responses)]
    completions = extractor(prompts)
    if len(completions) != len(prompts):
        raise ValueError(f"the LLM extractor returned {len(completions)} completions for {len(prompts)} prompts")
    return [parse_extraction(c) for c in completions]


def judge_extractor(config) -> LLMExtractor:
    """An extractor on the judge client (`rewards.judge.JudgeClient`) for `config`, a `JudgeConfig`."""
    from rewards.contract import run_coroutine
    from rewards.judge import JudgeClient

    client = JudgeClient(config)
    return lambda prompts: run_coroutine(client.complete_many(prompts))
