#!/usr/bin/env bash
# The GPU check of issue 18 on a fresh machine: install the project with its GPU extra (triton),
# then run every measurement (benchmarks/gpu_check.py; arguments pass through, e.g. --out).
# Usage, from the repository root: bash benchmarks/gpu_check.sh [--out gpu_check.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch, triton, surrogates, pipeline.sweep.analysis" 2>/dev/null; then
  "$PY" -m pip install --quiet -e '.[gpu]'
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$PY" benchmarks/gpu_check.py "$@"
