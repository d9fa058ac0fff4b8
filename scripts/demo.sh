#!/usr/bin/env bash
# The main job, on this machine: prepare it (scripts/bootstrap.sh), bring up
# the lab fleet (scripts/lab.sh up: a CA, nginx, HAProxy, a Python service
# and a client, each a Debian host with systemd in podman) and take it from
# no mTLS to strict mTLS with the rollout (playbooks/site.yml), printing the
# report. Run it again: nothing changes. Extra arguments go to
# ansible-playbook (e.g. -e mtls_rollout_phases=pki,permissive).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh
bash scripts/lab.sh up
export ANSIBLE_CONFIG="$repo/ansible.cfg"
exec "$repo/.venv/bin/ansible-playbook" -i inventories/lab/hosts.yml playbooks/site.yml "$@"
