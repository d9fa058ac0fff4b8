#!/usr/bin/env bash
# The main job, on this machine: prepare it (scripts/bootstrap.sh), bring up
# the lab fleet (scripts/lab.sh up: a CA, nginx, HAProxy, a Python service
# and a client, each a Debian host with systemd in podman) and take it from
# no mTLS to strict mTLS with the rollout (playbooks/site.yml), as the
# runbook goes, with real callers on the client (scripts/lab-callers.yml):
#
#   1. certificates everywhere, the servers permissive; two callers start,
#      "steady" with its certificate and "legacy" without one;
#   2. the gate refuses strict mode and names the legacy caller;
#   3. the fix: the legacy caller gets its certificate;
#   4. every phase again, from the fix on: strict, verified; the report
#      gives the counts of each server, and the health report
#      (~/fleet-mtls-report/health.html) every certificate's expiry.
#
# Once the servers are strict, running it again runs the site playbook only,
# which changes nothing. Extra arguments go to every ansible-playbook run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh
bash scripts/lab.sh up
export ANSIBLE_CONFIG="$repo/ansible.cfg"
export PATH="$repo/.venv/bin:$PATH"
inventory=inventories/lab/hosts.yml
# The lab's gate needs this much permissive time (inventories/lab/group_vars/all.yml), and a little more.
window=$(($(sed -n 's/^mtls_rollout_min_window: *\([0-9]*\).*/\1/p' inventories/lab/group_vars/all.yml) + 7))

step() { printf '\n=== demo: %s\n' "$*"; }
playbook() { ansible-playbook -i "$inventory" "$@"; }

# Strict already (recorded by the rollout on every server): the site run only.
if ansible -i "$inventory" web:lb:app -o -m ansible.builtin.command \
  -a "grep -q '\"mode\": \"strict\"' /etc/ansible/facts.d/fleet_mtls.fact" >/dev/null 2>&1; then
  step "every server is strict already: the site playbook, which must change nothing"
  exec ansible-playbook -i "$inventory" playbooks/site.yml "$@"
fi

step "1. certificates everywhere, the servers permissive"
playbook playbooks/site.yml -e mtls_rollout_phases=pki,permissive "$@"
step "1. the callers on the client: steady (with a certificate) and legacy (without one)"
playbook scripts/lab-callers.yml "$@"
sleep "$window"

step "2. the gate, while the legacy caller has no certificate: it must refuse and name it"
gate_log=$(mktemp /tmp/fleet-mtls-demo-gate.XXXXXX)
trap 'rm -f "$gate_log"' EXIT
status=0
playbook playbooks/site.yml -e mtls_rollout_phases=observe,gate "$@" 2>&1 | tee "$gate_log" || status=$?
if ((status == 0)); then
  echo "demo: the gate let strict mode through while a caller had no certificate" >&2
  exit 1
fi
if ! grep -q 'Strict mode NOT enforced' "$gate_log" || ! grep -q 'user agent lab-legacy/1.0' "$gate_log"; then
  echo "demo: the gate run failed, but not by the gate naming the legacy caller (see above)" >&2
  exit 1
fi
echo "demo: the gate refused, as it must, and named the legacy caller (user agent lab-legacy/1.0)"

step "3. the fix: the legacy caller gets its certificate"
playbook scripts/lab-callers.yml -e mtls_lab_legacy_certificate=true "$@"
# A little after now: the logs give times to the second, and a request the
# old process sent just before its restart may be logged in this one.
since=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
sleep "$window"

rm -f "$gate_log"
step "4. every phase, counting from the fix ($since): strict"
exec ansible-playbook -i "$inventory" playbooks/site.yml -e "mtls_rollout_observe_since=$since" "$@"
