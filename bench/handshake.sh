#!/usr/bin/env bash
# bench/handshake.sh [INVENTORY]: the handshake benchmark (bench/README.md) on a
# lab fleet that scripts/demo.sh has taken to strict mTLS (default:
# inventories/lab/hosts.yml). Four runs of bench/handshake.yml, the servers
# permissive while each lasts:
#   ec         the fleet as it is (EC P-256 certificates);
#   ec+thread  HAProxy and gunicorn only, gunicorn with the keep-alive
#              ThreadWorker and HAProxy reusing backend connections for a
#              client's first request (http-reuse aggressive);
#   rsa        every certificate renewed with an RSA 2048 key
#              (playbooks/rotate.yml), the inventory's settings again;
# and every certificate renewed back to the inventory's keys. Then the table.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
inventory=${1:-$repo/inventories/lab/hosts.yml}
out=$repo/.build/bench/handshake
mkdir -p "$out"
export ANSIBLE_CONFIG="$repo/ansible.cfg"
export PATH="$repo/.venv/bin:$PATH"
run() { ansible-playbook -i "$inventory" "$@"; }

run "$repo/bench/handshake.yml" -e handshake_bench_setup=ec -e "handshake_bench_out=$out/ec.json"
run "$repo/bench/handshake.yml" -e handshake_bench_setup=ec+thread -e "handshake_bench_out=$out/ec-thread.json" \
  -e '{"handshake_bench_servers": ["haproxy+gunicorn", "gunicorn"]}' \
  -e mtls_python_service_worker_class=fleet_mtls_identity.ThreadWorker -e mtls_haproxy_http_reuse=aggressive
run "$repo/playbooks/rotate.yml" -e mtls_certificate_key_type=rsa -e mtls_certificate_key_size=2048
# Its first play also puts the inventory's worker class and http-reuse back.
run "$repo/bench/handshake.yml" -e handshake_bench_setup=rsa -e "handshake_bench_out=$out/rsa.json"
run "$repo/playbooks/rotate.yml"   # back to the inventory's keys (EC P-256)
python3 "$repo/bench/handshake_table.py" "$out/ec.json" "$out/ec-thread.json" "$out/rsa.json"
