#!/usr/bin/env bash
# The main job, on this machine: prepare it (scripts/bootstrap.sh), then run
# the PKI demo. Run it again: nothing changes until certificates need renewal.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh
export ANSIBLE_CONFIG="$repo/ansible.cfg"
exec "$repo/.venv/bin/ansible-playbook" -i localhost, -c local \
  -e ansible_python_interpreter=/usr/bin/python3 playbooks/pki_demo.yml "$@"
