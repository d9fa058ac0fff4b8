#!/usr/bin/env bash
# bench/run.sh [N [ROUNDS]]: the issuance benchmark (default N = 10 and 50, 3 rounds).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/bootstrap.sh"
if (($#)); then
  exec "$repo/.venv/bin/python" "$repo/bench/run.py" "$@"
fi
for n in 10 50; do
  "$repo/.venv/bin/python" "$repo/bench/run.py" "$n" 3
done
