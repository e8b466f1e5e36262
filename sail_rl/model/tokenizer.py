"""A small byte-level BPE tokenizer trained locally (no hub), for the tiny presets.

Digits are split one per token (as Qwen does), so numbers are spelled the same way
everywhere; the special tokens of the chat format and the image slot are single tokens.
The corpus is generated here: visual-math questions, rationales and answers in the style
of the synthetic data, plus common English, so any later text still encodes (byte-level).
"""

from __future__ import annotations

import random
import tempfile

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from sail_rl.model.processing import SPECIAL_TOKENS

TEXT_TAGS = ("<think>", "</think>", "<judge>", "</judge>")

_WORDS = (
    "the a an of in on at to is are was be this that these those what which how many much "
    "image picture figure shown show shows below above left right top bottom middle there "
    "count number total sum add plus minus times difference value values bar bars chart graph "
    "tallest shortest largest smallest highest lowest more less than equal compare between "
    "circle circles square squares triangle triangles shape shapes star dot dots line lines "
    "red green blue yellow black white orange purple gray color colour colored "
    "clock hour hours minute angle degrees acute obtuse right hand hands points "
    "answer question choices choice option options final step steps think first then so "
    "therefore thus we get see find read look label labels written digit digits numbers "
    "integer float decimal place places round rounded two one three four five six seven eight "
    "nine ten zero each all both only not no yes and or with from for by as it its "
    "directly give put inside box boxed reason reasoning hence because since result "
    "assistant user system helpful you are please solve problem visual math"
).split()


def corpus(lines: int = 4000, seed: int = 0) -> list[str]:
    """Generated training text for the tokenizer (deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        words = rng.choices(_WORDS, k=rng.randint(6, 18))
        n1, n2 = rng.randint(0, 99), rng.randint(0, 99)
        out.append(" ".join(words).capitalize() + f" {n1} + {n2} = {n1 + n2}.")
        out.append(f"<think>{' '.join(rng.choices(_WORDS, k=8))} {n1}.</think> The answer is \\boxed{{{n2}}}.")
        out.append(f"(A) {n1} (B) {n2} (C) {n1 + 1}. Answer: \\boxed{{{rng.choice('ABCD')}}} {n1 / 10:.1f}")
    return out


def train_tokenizer(vocab_size: int = 1024, seed: int = 0) -> PreTrainedTokenizerFast:
    """Train the tiny tokenizer and wrap it for transformers (special tokens set, ChatML template)."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\d"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>") + TEXT_TAGS],
    )
    # The reasoning tags are part of the answer text (as in Qwen3): single tokens, but not
    # "special", so decoding with skip_special_tokens=True keeps them.
    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TAGS])
    fast.chat_template = CHATML_TEMPLATE
    with tempfile.TemporaryDirectory() as tmp:  # reload: the in-memory object keeps the old flags
        fast.save_pretrained(tmp)
        return AutoTokenizer.from_pretrained(tmp)


# The jinja twin of processing.render_chat, for code that calls tokenizer.apply_chat_template
# (vLLM's chat API, TRL). Image parts render as `<image>`; the processor expands them.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

__all__ = ["train_tokenizer", "corpus", "CHATML_TEMPLATE"]
