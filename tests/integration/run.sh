#!/usr/bin/env bash
# Run the integration targets through ansible-playbook, once with each Python
# the modules meet: the controller's virtualenv and Debian's own python3 with
# its packaged cryptography (what a managed Debian host runs them with).
# Usage: tests/integration/run.sh [TARGET ...]   (default: every target but the
# setup_* ones, which run as the dependency of the targets that need them)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in tests/integration/targets/*/; do
    target=$(basename "$dir")
    [[ $target == setup_* ]] || targets+=("$target")
  done
fi
target_json=$(printf '"%s",' "${targets[@]}")
export ANSIBLE_ROLES_PATH="$repo/tests/integration/targets"
for python in "$repo/.venv/bin/python" /usr/bin/python3; do
  crypto=$("$python" -c 'import cryptography; print(cryptography.__version__)')
  echo "== integration: ${targets[*]} with $python (cryptography $crypto)"
  "$repo/.venv/bin/ansible-playbook" -i localhost, -c local tests/integration/integration.yml \
    -e "{\"integration_targets\": [${target_json%,}], \"ansible_python_interpreter\": \"$python\"}"
done
