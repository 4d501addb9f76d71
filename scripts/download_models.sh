#!/usr/bin/env bash
# Download MoViNet stream models and the Kinetics-600 labels into the user cache.
#   scripts/download_models.sh                 # a0 int8 (the default)
#   scripts/download_models.sh a0 a1 --quant float16 --dir ./models
# Arguments go to `movinet-pi download` unchanged; with none, it fetches a0.
# Without the movinet-pi command on PATH it runs the package with $PYTHON (default python3).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    set -- a0
fi

if command -v movinet-pi >/dev/null 2>&1; then
    exec movinet-pi download "$@"
fi
exec "${PYTHON:-python3}" -m movinet_pi download "$@"
