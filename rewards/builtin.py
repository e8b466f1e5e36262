"""Built-in rewards (registered names): format, accuracy, overlong, repetition,
think_quality, judging, llm_verifier. Each takes `inputs: list[RewardInput]`.

Responses look like `<think>reasoning</think>\\nThe answer is \\boxed{42}` (thinking mode) or
`\\boxed{42}` (direct mode); in auto mode the model picks one, and its first token is the
decision (`rewards.layout.thinks`).
"""

from __future__ import annotations

from sail_rl.errors import RewardError

from rewards.answer_extraction import extract_answer, final_part
from rewards.contract import RewardInput, register_reward
from rewards.grader import grade
from rewards.judge import THINK_LABELS, client_for, think_quality_prompt, verifier_prompt
from rewards.layout import follows_layout, thinks

_THINK_WORDS = {"think", "thinking", "yes", "reason", "reasoning", "cot", "true", "1"}
_DIRECT_WORDS = {"direct", "no", "answer", "no_think", "nothink", "false", "0"}


@register_reward("format")
def format_reward(inputs: list[RewardInput], mode: str = "think") -> list[float]:
    """1.0 when the response has the trained layout (`rewards.layout.follows_layout`), else 0.0.
    `mode: prompt` checks each response against its prompt's mode (`extra["prompt_mode"]`).

    >>> r = lambda text, **kw: format_reward([RewardInput("q", text)], **kw)[0]
    >>> r("<think>2+2=4</think>\\nThe answer is \\\\boxed{4}."), r("<think></think>\\\\boxed{4}")
    (1.0, 0.0)
    >>> r(" <think>ok</think>\\\\boxed{4}"), r("\\\\boxed{4} and \\\\boxed{5}", mode="direct")
    (1.0, 0.0)
    >>> r("\\\\boxed{4}", mode="direct"), r("\\\\boxed{4}", mode="auto"), r("\\\\boxed{4} because", mode="auto")
    (1.0, 1.0, 0.0)
    """
    if mode not in ("think", "direct", "auto", "prompt"):
        raise RewardError(f"reward 'format': mode must be think, direct, auto or prompt, got {mode!r}; fix its kwargs")
    if mode == "prompt":  # each prompt's own mode (data.prompt_mode mixed: the RL loop puts it in extra)
        modes = [x.extra.get("prompt_mode") for x in inputs]
        if any(m not in ("think", "direct", "auto") for m in modes):
            raise RewardError("reward 'format' with mode prompt needs extra['prompt_mode'] (think, direct or auto) on "
                              f"every input, got {sorted(set(map(str, modes)))}; the RL loop sets it")
        return [1.0 if follows_layout(x.response, m) else 0.0 for x, m in zip(inputs, modes)]
    return [1.0 if follows_layout(x.response, mode) else 0.0 for x in inputs]


@register_reward("accuracy")
def accuracy_reward(inputs: list[RewardInput], timeout_s: float = 2.0) -> list[float | None]:
    """1.0 when the final answer grades equal to the ground truth; None without ground truth.

    >>> accuracy_reward([RewardInput("q", "<think>..</think> \\\\boxed{\\\\frac12}", "0.5"),
    ...                  RewardInput("q", "\\\\boxed{B}", "145°", choices=["120°", "145°"]),
    ...                  RewardInput("q", "\\\\boxed{3}", "4"), RewardInput("q", "\\\\boxed{3}", None)])
    [1.0, 1.0, 0.0, None]
    """
    return [
        None if x.ground_truth is None else float(grade(
            x.response, x.ground_truth, answer_type=x.answer_type, choices=x.choices,
            precision=x.precision, timeout_s=timeout_s))
        for x in inputs
    ]


def _length_tokens(x: RewardInput) -> int:
    tokens = x.extra.get("response_tokens")
    if tokens is None:
        return len(x.response.split())
    return int(tokens) if isinstance(tokens, (int, float)) else len(tokens)


@register_reward("overlong")
def overlong_reward(inputs: list[RewardInput], max_response_tokens: int = 4096,
                    overlong_buffer_tokens: int = 1024) -> list[float]:
    """DAPO soft overlong punishment in [-1, 0].

    0 up to max_response_tokens - overlong_buffer_tokens, then linear down to -1 at
    max_response_tokens (and -1 past it). Length is `extra["response_tokens"]` (a count or
    the token ids) when present, else whitespace-separated words.

    >>> overlong_reward([RewardInput("q", "w " * n) for n in (5, 8, 9, 10, 30)],
    ...                 max_response_tokens=10, overlong_buffer_tokens=4)
    [0.0, -0.5, -0.75, -1.0, -1.0]
    """
    start = max_response_tokens - overlong_buffer_tokens
    return [
        max(-1.0, min(0.0, (start - _length_tokens(x)) / max(overlong_buffer_tokens, 1))) for x in inputs
    ]


@register_reward("repetition")
def repetition_reward(inputs: list[RewardInput], ngram_size: int = 3) -> list[float]:
    """Minus the fraction of repeated word n-grams, in [-1, 0] (0 = no n-gram repeats).

    >>> repetition_reward([RewardInput("q", "a b c d e f"), RewardInput("q", "a b a b a b a b"),
    ...                    RewardInput("q", "too short")])
    [0.0, -0.6666666666666667, 0.0]
    """
    scores = []
    for x in inputs:
        words = x.response.lower().split()
        ngrams = [tuple(words[i:i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
        scores.append(-(1.0 - len(set(ngrams)) / len(ngrams)) if ngrams else 0.0)
    return [s + 0.0 for s in scores]  # + 0.0 turns -0.0 into 0.0


def _label_decision(label: object) -> str | None:
    if isinstance(label, bool):
        return "think" if label else "direct"
    if isinstance(label, (int, float)):
        return "think" if label else "direct"
    word = str(label).strip().lower() if label is not None else ""
    return "think" if word in _THINK_WORDS else "direct" if word in _DIRECT_WORDS else None


@register_reward("judging")
def judging_reward(inputs: list[RewardInput]) -> list[float | None]:
    """1.0 when the response's think-or-not decision (does it open with `<think>`?) matches
    `extra["should_think"]`, else 0.0; None for a sample without a label (`sail-rl data label-think`
    writes them). The label may be a bool, 0/1, or a think/direct word.

    >>> judging_reward([RewardInput("q", "<think>..</think>\\\\boxed{1}", extra={"should_think": True}),
    ...                 RewardInput("q", "<think>..</think>\\\\boxed{1}", extra={"should_think": "direct"}),
    ...                 RewardInput("q", "\\\\boxed{1}", extra={"should_think": False}), RewardInput("q", "x")])
    [1.0, 0.0, 1.0, None]
    """
    scores: list[float | None] = []
    for x in inputs:
        label = _label_decision(x.extra.get("should_think"))
        scores.append(None if label is None else float(("think" if thinks(x.response) else "direct") == label))
    return scores


def split_thought(response: str) -> tuple[str, str] | None:
    """(thought, answer part) of a thinking response; None when there is no closed think block.

    >>> split_thought("<think> a </think> \\\\boxed{1}")
    ('a', '\\\\boxed{1}')
    """
    if "<think>" not in response or "</think>" not in response:
        return None
    thought = response.split("<think>", 1)[1].rsplit("</think>", 1)[0]
    return thought.strip(), final_part(response).strip()


@register_reward("think_quality")
def think_quality_reward(inputs: list[RewardInput], **judge_kwargs: object) -> list[dict | None]:
    """Judge's mean of three binary checks on the thought (coherence, grounding, consistency).

    None for responses without a think block; 0.0 (and `parse_failed` 1.0) when the judge's
    reply does not parse. `judge_kwargs` are `JudgeConfig` fields (base_url, model, ...); the judge
    gets the sample's images (or a clip's frames) unless `send_images: false`, and an endpoint that
    refuses images is a one-line error saying so.
    """
    client = client_for(dict(judge_kwargs), "think_quality", send_images=True)  # grounding is judged on the image
    todo = [(i, split_thought(x.response)) for i, x in enumerate(inputs)]
    todo = [(i, parts) for i, parts in todo if parts is not None]
    limit = client.config.max_response_chars
    prompts = [think_quality_prompt(inputs[i].prompt, t, a, limit) for i, (t, a) in todo]
    verdicts = client.judge(prompts, THINK_LABELS, [inputs[i].images for i, _ in todo]) if todo else []
    scores: list[dict | None] = [None] * len(inputs)
    for (i, _), verdict in zip(todo, verdicts):
        if verdict is None:
            scores[i] = {"score": 0.0, "parse_failed": 1.0}
            continue
        parts = {name.lower(): float(verdict[name]) for name in THINK_LABELS}
        scores[i] = {"score": sum(parts.values()) / 3, **parts, "parse_failed": 0.0}
    return scores


@register_reward("llm_verifier")
def llm_verifier_reward(inputs: list[RewardInput], **judge_kwargs: object) -> list[dict | None]:
    """Judge's verdict: is the response's final answer equivalent to the ground truth?

    For answers no rule can check. None without ground truth; 0.0 (and `parse_failed`
    1.0) when the judge's reply does not end with exactly `VERDICT: YES` / `VERDICT: NO`.
    """
    client = client_for(dict(judge_kwargs), "llm_verifier")
    todo = [i for i, x in enumerate(inputs) if x.ground_truth is not None]
    limit = client.config.max_response_chars
    prompts = [
        verifier_prompt(inputs[i].prompt, str(inputs[i].ground_truth), final_part(inputs[i].response).strip()
                        or extract_answer(inputs[i].response) or "", limit)
        for i in todo
    ]
    verdicts = client.judge(prompts, ("VERDICT",), [inputs[i].images for i in todo]) if todo else []
    scores: list[dict | None] = [None] * len(inputs)
    for i, verdict in zip(todo, verdicts):
        scores[i] = {"score": float(verdict["VERDICT"]) if verdict else 0.0, "parse_failed": float(verdict is None)}
    return scores
