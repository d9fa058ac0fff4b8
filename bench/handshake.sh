#!/usr/bin/env bash
# bench/handshake.sh [INVENTORY]: the handshake benchmark (bench/README.md) on a
# lab fleet that scripts/demo.sh has taken to strict mTLS (default:
# inventories/lab/hosts.yml). It runs every cell with the fleet's EC P-256
# certificates, renews every certificate with an RSA 2048 key
# (playbooks/rotate.yml), runs them again, renews back to EC, and prints the
# table. The servers are permissive while a run lasts (bench/handshake.yml).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
inventory=${1:-$repo/inventories/lab/hosts.yml}
out=$repo/.build/bench/handshake
mkdir -p "$out"
export ANSIBLE_CONFIG="$repo/ansible.cfg"
export PATH="$repo/.venv/bin:$PATH"
run() { ansible-playbook -i "$inventory" "$@"; }

run "$repo/bench/handshake.yml" -e handshake_bench_key=ec -e "handshake_bench_out=$out/ec.json"
run "$repo/playbooks/rotate.yml" -e mtls_certificate_key_type=rsa -e mtls_certificate_key_size=2048
run "$repo/bench/handshake.yml" -e handshake_bench_key=rsa -e "handshake_bench_out=$out/rsa.json"
run "$repo/playbooks/rotate.yml"   # back to the inventory's keys (EC P-256)
python3 "$repo/bench/handshake_table.py" "$out/ec.json" "$out/rsa.json"
