#!/usr/bin/env bash
# Every test of the collection, in the order that fails fastest:
#   unit         pytest of the PKI core, with the newest cryptography and (the plugins) with 38.0 (Debian 12's),
#                and of the Python service's helper under real gunicorn 20.1 and 23
#   sanity       ansible-test sanity (no ignores), on a copy laid out as ansible_collections/fleet/mtls
#   lint         ansible-lint --profile production on roles and playbooks
#   integration  the modules through ansible-playbook on this host, with the venv's and Debian's
#                Python; then the PKI demo playbook, twice (the second run must change nothing)
#   demo         the README's main command as a new user runs it: the lab removed, then
#                scripts/demo.sh twice; the first run must end with every server strict and
#                verified, the second must change nothing on any host
#   molecule     the roles on systemd hosts in podman (Debian 12 and 13), reached over SSH
# Usage: scripts/test.sh [STAGE ...]   (default: all, in that order)
# With other stages, the demo runs beside them, in a second process of this script
# (log: .build/demo/stage.log): it spends much of its time waiting on its lab's hosts
# and timed windows, and the stages before molecule use about one core. Molecule, which
# uses every core, starts once the demo is done.
# It ends with a timing table: each stage, and each Molecule scenario on each image.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo/ansible.cfg"

stages=("$@")
((${#stages[@]})) || stages=(unit sanity lint integration demo molecule)
timings=()
demo_pid=""
join_demo() { # wait for the demo beside the other stages; show its output; its status
  local status=0
  [[ -n $demo_pid ]] || return 0
  wait "$demo_pid" || status=$?
  demo_pid=""
  echo "=== demo (beside the stages before molecule; log: .build/demo/stage.log)"
  sed '/^=== timing/,$d' .build/demo/stage.log
  local took
  took=$(cat .build/demo/stage.seconds 2>/dev/null || echo "?")
  if ((status == 0)); then timings+=("demo(beside) $took"); else timings+=("demo(beside) FAILED:$took"); fi
  return "$status"
}
print_timings() {
  local status=$? row
  [[ -z ${current:-} ]] || timings+=("$current FAILED:$((SECONDS - start))")
  current=""
  join_demo || status=1
  echo "=== timing (seconds, on $(nproc) cores)"
  printf '%-28s %8s\n' stage seconds
  for row in "${timings[@]}"; do
    # shellcheck disable=SC2086 # a row is "name seconds"
    printf '%-28s %8s\n' $row
  done
  printf '%-28s %8s\n' total "$SECONDS"
  return "$status"
}
trap print_timings EXIT

old_cryptography="$repo/.build/cryptography-38"
stage_unit() {
  if [[ ! -f "$old_cryptography/.done" ]]; then
    rm -rf "$old_cryptography"
    pip install -q --disable-pip-version-check --no-deps --target "$old_cryptography" 'cryptography==38.0.4'
    touch "$old_cryptography/.done"
  fi
  # Real gunicorn for the Python service's tests: Debian 12's 20.1 and Debian 13's 23 (each in a
  # virtualenv of Debian's Python), so that the CRL check is proven on both worker code paths.
  # Kept outside the checkout, like the test fleet's images: a clean clone finds them made.
  local gunicorns=() version dir
  for version in 20.1.0 23.0.0; do
    dir="${XDG_CACHE_HOME:-$HOME/.cache}/fleet-mtls/gunicorn-$version-py$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ ! -f "$dir/.done" ]]; then
      rm -rf "$dir"
      /usr/bin/python3 -m venv "$dir"
      "$dir/bin/pip" install -q --disable-pip-version-check "gunicorn==$version"
      touch "$dir/.done"
    fi
    gunicorns+=("$dir/bin/gunicorn")
  done
  FLEET_MTLS_TEST_GUNICORN=$(IFS=:; echo "${gunicorns[*]}")
  export FLEET_MTLS_TEST_GUNICORN
  # The health report's browser test keeps its 1280x800 screenshot with the test output.
  mkdir -p "$repo/.build/test-output"
  MTLS_REPORT_SCREENSHOT="$repo/.build/test-output/health-report.png" \
    PYTHONPATH="$repo/.build/collections" python -m pytest -q tests/unit
  # Debian 12's cryptography for the code managed hosts run: the plugins (the roles' and the
  # extensions' tests use neither the collection's modules nor the venv's cryptography).
  PYTHONPATH="$repo/.build/collections:$old_cryptography" python -m pytest -q tests/unit/plugins
}

stage_sanity() {
  local sanity_venv="$repo/.build/sanity-venv" requirements="$repo/tests/sanity/sanity-requirements.txt"
  local want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ "$(cat "$sanity_venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$sanity_venv"
    /usr/bin/python3 -m venv "$sanity_venv"
    "$sanity_venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$sanity_venv/.requirements.sha256"
  fi
  # ansible-test bootstraps pip in each test's virtualenv with a script from a
  # host outside the package index; this stand-in does it with ensurepip.
  local pip_version
  pip_version=$("$sanity_venv/bin/python" - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(python_requirements)).group(1))
PY
)
  mkdir -p ~/.ansible/test/cache
  cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
  # Outside the checkout: inside it, git would hide the copy from ansible-test.
  local top tree
  top=$(mktemp -d /tmp/fleet-mtls-sanity.XXXXXX)
  tree="$top/ansible_collections/fleet/mtls"
  mkdir -p "$tree"
  git ls-files -co --exclude-standard -z | rsync -a --ignore-missing-args --from0 --files-from=- ./ "$tree/"
  (cd "$tree" && "$sanity_venv/bin/ansible-test" sanity --local --python 3.11 --color no) 2>&1 \
    | grep -v "^WARNING: Location 'file://" | tee "$top/sanity.log"
  local status=${PIPESTATUS[0]}
  # A run that tested nothing must not pass.
  if grep -q "All targets skipped" "$top/sanity.log"; then
    echo "ansible-test sanity found nothing to test" >&2
    status=1
  fi
  rm -rf "$top"
  return "$status"
}

stage_lint() {
  ansible-lint --profile production --offline
  python tests/lint/check_role_prefixes.py
}

stage_integration() {
  tests/integration/run.sh
  # The PKI demo playbook, twice: the second run must change nothing. (The
  # README's demo, the lab rollout, is the default Molecule scenario.)
  local demo_dir run
  demo_dir=$(mktemp -d /tmp/fleet-mtls-demo.XXXXXX)
  run=(ansible-playbook -i 'localhost,' -c local -e ansible_python_interpreter=/usr/bin/python3
       -e "mtls_demo_dir=$demo_dir" playbooks/pki_demo.yml)
  "${run[@]}" >"$demo_dir.first.log"
  "${run[@]}" >"$demo_dir.second.log"
  if grep -E 'changed=[1-9]|failed=[1-9]' "$demo_dir.second.log"; then
    echo "the PKI demo changed something on its second run" >&2
    return 1
  fi
  grep -c 'chains to the bundle: True' "$demo_dir.second.log" | grep -qx 4
  rm -rf "$demo_dir" "$demo_dir".*.log
}

demo_run() { # N: run the demo once, log to .build/demo/runN.log, print its recap
  local log=.build/demo/run$1.log
  echo "demo run $1 (log: $log)"
  if ! bash scripts/demo.sh >"$log" 2>&1; then
    tail -n 80 "$log"
    echo "the demo's run $1 failed" >&2
    return 1
  fi
  sed -n '/^PLAY RECAP/,$p' "$log"
}

stage_demo() {
  local log=.build/demo report=~/fleet-mtls-report/rollout.json health=~/fleet-mtls-report/health.json
  mkdir -p "$log"
  bash scripts/lab.sh down
  rm -f "$report" "$health"
  demo_run 1 || return 1
  # The runbook: the gate refused strict mode naming the legacy caller, before the fix.
  if ! grep -q 'named the legacy caller' "$log/run1.log"; then
    echo "the demo's first run did not show the gate naming the legacy caller" >&2
    return 1
  fi
  python3 - "$report" "$health" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
health = json.load(open(sys.argv[2]))
summary = report["summary"]
modes = {server["host"]: server["mode"] for server in report["servers"]}
print("demo run 1: modes", modes)
if not modes or set(modes.values()) != {"strict"}:
    sys.exit(f"the demo's first run did not leave every server strict: {modes}")
if summary["verification_failed"] or summary["rolled_back"]:
    sys.exit(f"the demo's first run was not verified: {summary}")
counts = {server["host"]: (server["adoption"] or {}).get("requests", 0) for server in report["servers"]}
print("demo run 1: requests counted", counts)
if not all(counts.values()):
    sys.exit(f"the demo's report counted no request on some server: {counts}")
hosts = [entry["host"] for entry in health["hosts"]]
print("demo run 1: health", health["summary"]["status"], "of", hosts)
if health["summary"]["attention"]["critical"] or len(hosts) != 4 or health["summary"]["services"]["strict"] != 3:
    sys.exit(f"the demo's health report is not of a healthy strict fleet: {health['summary']} {health['attention']}")
PY
  demo_run 2 || return 1
  if ! grep -q '^PLAY RECAP' "$log/run2.log" || grep -E 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' "$log/run2.log"; then
    echo "the demo's second run changed something (or did not finish)" >&2
    return 1
  fi
  echo "demo run 2: changed=0 on every host"
  bash scripts/lab.sh down
}

stage_molecule() {
  # Every scenario (each directory with a molecule.yml) on each image. The
  # two images run side by side (their containers, networks and state are
  # apart): the runs mostly wait on booting hosts and timed load, so two
  # fit on 2 cores. Within an image, one scenario after the other.
  local scenarios=() image pids=() failed=0
  for dir in extensions/molecule/*/; do
    [[ -f "$dir/molecule.yml" ]] && scenarios+=("$(basename "$dir")")
  done
  tests/fleet/build-images.sh debian12 debian13 # before the parallel runs: one build at a time
  mkdir -p .build/molecule
  rm -f .build/molecule/timings
  for image in debian12 debian13; do
    (
      status=0
      for scenario in "${scenarios[@]}"; do
        start=$SECONDS
        if tests/fleet/molecule.sh "$image" test -s "$scenario" >/dev/null 2>&1; then
          echo "$image/$scenario passed in $((SECONDS - start))s"
          echo "molecule:$image/$scenario $((SECONDS - start))" >>.build/molecule/timings
        else
          echo "$image/$scenario FAILED after $((SECONDS - start))s (log: .build/molecule/$image-$scenario.log)"
          echo "molecule:$image/$scenario FAILED:$((SECONDS - start))" >>.build/molecule/timings
          status=1
        fi
      done
      exit "$status"
    ) >".build/molecule/$image.report" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  cat .build/molecule/debian12.report .build/molecule/debian13.report
  local row
  while read -r row; do timings+=("  $row"); done < <(sort .build/molecule/timings 2>/dev/null)
  if ((failed)); then
    for log in .build/molecule/*-*.log; do
      if grep -q "FAILED\|fatal:" "$log"; then
        echo "--- end of $log"
        tail -n 60 "$log"
      fi
    done
  fi
  return "$failed"
}

for stage in "${stages[@]}"; do
  declare -F "stage_$stage" >/dev/null || { echo "unknown stage: $stage" >&2; exit 2; }
done
if ((${#stages[@]} > 1)) && [[ " ${stages[*]} " == *" demo "* ]]; then
  mkdir -p .build/demo
  rm -f .build/demo/stage.seconds
  (
    began=$SECONDS
    status=0
    bash scripts/test.sh demo >.build/demo/stage.log 2>&1 || status=$?
    echo "$((SECONDS - began))" >.build/demo/stage.seconds
    exit "$status"
  ) &
  demo_pid=$!
fi

for stage in "${stages[@]}"; do
  if [[ $stage == demo && -n $demo_pid ]]; then continue; fi
  if [[ $stage == molecule ]]; then join_demo; fi
  echo "=== $stage"
  start=$SECONDS
  current=$stage
  "stage_$stage" # errexit holds inside: a failing command ends the run here
  timings+=("$stage $((SECONDS - start))")
done
current=""
join_demo
echo "=== all stages passed"
