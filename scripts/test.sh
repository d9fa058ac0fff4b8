#!/usr/bin/env bash
# Every test of the collection, in the order that fails fastest:
#   unit         pytest of the PKI core, with the newest cryptography and (the plugins) with 38.0 (Debian 12's),
#                and of the Python service's helper under real gunicorn 20.1 and 23
#   sanity       ansible-test sanity (no ignores), on a copy laid out as ansible_collections/fleet/mtls;
#                then the execution environment's build context (tests/ee/create.sh)
#   lint         ansible-lint --profile production on roles and playbooks, with only ansible-core;
#                then the docs site, and galaxy-importer on the built tarball (tests/importer/run.sh)
#   integration  the modules through ansible-playbook on this host, with the venv's and Debian's
#                Python; then the PKI demo playbook, twice (the second run must change nothing)
#   demo         the README's main command as a new user runs it: the lab removed, then
#                scripts/demo.sh twice; the first run must end with every server strict and
#                verified, the second must change nothing on any host; then the execution
#                environment built and the rotate job run in it against the lab, as AWX runs
#                it (tests/ee/run.sh --lab): it must change nothing
#   molecule     the roles on systemd hosts in podman (Debian 12 and 13), reached over SSH
# Usage: scripts/test.sh [STAGE ...]   (default: all, in that order)
# With other stages, the demo runs beside them, in a second process of this script
# (log: .build/demo/stage.log): it spends much of its time waiting on its lab's hosts
# and timed windows, and the stages before molecule use about one core. Once the demo has
# passed, that process goes on with Molecule scenarios (a second Molecule worker): the
# stages before molecule leave the other core to it. See stage_molecule.
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
demo_pid=""   # the process beside: the demo, then (if it passed) a Molecule worker
demo_joined=""
join_demo() { # wait for the demo beside the other stages (not for the worker after it); show its output; its status
  local status=0
  [[ -n $demo_pid && -z $demo_joined ]] || return 0
  while [[ ! -f .build/demo/stage.status ]]; do
    if ! kill -0 "$demo_pid" 2>/dev/null; then echo 1 >.build/demo/stage.status; break; fi
    sleep 2
  done
  demo_joined=yes
  status=$(cat .build/demo/stage.status)
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
  if ((status)) && [[ -n $demo_pid ]]; then
    molecule_close_queue # a stage failed: the worker beside takes no further scenario
  fi
  join_demo || status=1
  if [[ -n $demo_pid ]]; then
    wait "$demo_pid" || status=1
    demo_pid=""
  fi
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
  local sanity_venv
  sanity_venv=$(bash scripts/pinned-venv.sh sanity tests/sanity/sanity-requirements.txt)
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
  # Without shellcheck, ansible-test only warns and skips the shell scripts' test.
  if grep -q 'Required program "shellcheck" not found' "$top/sanity.log"; then
    echo "ansible-test sanity skipped shellcheck: install it (scripts/bootstrap.sh does)" >&2
    status=1
  fi
  rm -rf "$top"
  # The execution environment's build context (extensions/ee): the built collection's
  # requirements as ansible-builder reads them, and ansible-builder create (in a directory of
  # its own: tests/ee/run.sh builds from .build/ee).
  bash tests/ee/create.sh .build/ee-check || status=1
  return "$status"
}

stage_lint() {
  # With only ansible-core and this collection, as a user who installs nothing else has:
  # the collections of the pinned ansible bundle (the virtualenv's site-packages) are not
  # searched, so a module of another collection the roles or playbooks use fails the lint
  # (.ansible-lint mocks the few that only tests and benchmarks use).
  ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ansible-lint --profile production --offline
  python tests/lint/check_role_prefixes.py
  # Each role README's variable tables are generated from its argument_specs: one out of date fails.
  python tests/lint/role_readmes.py
  # The docs site, guides included, with antsibull-docs: any lint error or Sphinx warning fails
  # (intersphinx lookups off: they need the internet).
  bash tests/docs/build.sh
  # What Galaxy checks on an upload, on the built tarball: galaxy-importer, any warning fails.
  bash tests/importer/run.sh
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
  # The converged lab once more, from the execution environment as an AWX schedule runs it:
  # the image built, the rotate job run in it against the lab, changed=0 and its summary in
  # the job's artifacts (docs/awx.md).
  bash tests/ee/run.sh --lab
  bash scripts/lab.sh down
}

# Molecule: every scenario (each directory with a molecule.yml) on each image, as jobs that
# FLEET_MTLS_MOLECULE_WORKERS (2) workers take from one queue (.build/molecule/queue), in
# its order: the two images' default scenarios, the longest, first, then the others, image
# by image. A worker takes the first job whose image is built. Each scenario and image has
# containers, a network and a subnet of its own, so scenarios of one image run side by side
# too: the worker that starts first (beside the other stages, once the demo has passed; they
# use about one core) takes more of the queue, and all end about together. Two runs fill 2
# cores: with three, every job took about twice as long (a short scenario 430 s instead of
# 190 s) and the whole stage longer; raise it on a machine with more cores. This process's
# workers start with the molecule stage.
molecule_queue=.build/molecule/queue
molecule_images=(debian12 debian13)

molecule_fill_queue() {
  local scenarios=(default) dir scenario image
  for dir in extensions/molecule/*/; do
    scenario=$(basename "$dir")
    [[ -f "$dir/molecule.yml" && $scenario != default ]] && scenarios+=("$scenario")
  done
  mkdir -p .build/molecule
  rm -f "$molecule_queue".* .build/molecule/timings .build/molecule/worker-*.report
  for scenario in "${scenarios[@]}"; do
    for image in "${molecule_images[@]}"; do echo "$image $scenario"; done
  done >"$molecule_queue"
  wc -l <"$molecule_queue" >"$molecule_queue.count"
  molecule_queue_filled=yes
}

molecule_close_queue() {
  [[ -f $molecule_queue ]] || return 0
  (flock 9 && : >"$molecule_queue") 9>"$molecule_queue.lock"
}

molecule_image_ready() { # IMAGE: build it (cached) and let workers take its jobs
  tests/fleet/build-images.sh "$1"
  touch "$molecule_queue.ready-$1"
}

molecule_take_job() { # print the next job a worker may run now, "wait", or nothing when none is left
  (
    flock 9
    local line taken="" rest=()
    while read -r line; do
      [[ -n $line ]] || continue
      if [[ -z $taken && -e "$molecule_queue.ready-${line%% *}" ]]; then
        taken=$line
      else
        rest+=("$line")
      fi
    done <"$molecule_queue"
    if ((${#rest[@]})); then printf '%s\n' "${rest[@]}"; fi >"$molecule_queue"
    if [[ -n $taken ]]; then
      echo "$taken"
    elif ((${#rest[@]})); then
      echo wait
    fi
  ) 9>"$molecule_queue.lock"
}

molecule_worker() { # NAME: run jobs until none is left; one line per job in .build/molecule/worker-NAME.report
  local job image scenario began status=0 report=.build/molecule/worker-$1.report
  while job=$(molecule_take_job) && [[ -n $job ]]; do
    if [[ $job == wait ]]; then sleep 5; continue; fi
    image=${job%% *}
    scenario=${job#* }
    began=$SECONDS
    if tests/fleet/molecule.sh "$image" test -s "$scenario" >/dev/null 2>&1; then
      echo "$image/$scenario passed in $((SECONDS - began))s (worker $1)" >>"$report"
      echo "molecule:$image/$scenario $((SECONDS - began))" >>.build/molecule/timings
    else
      echo "$image/$scenario FAILED after $((SECONDS - began))s (worker $1; log: .build/molecule/$image-$scenario.log)" >>"$report"
      echo "molecule:$image/$scenario FAILED:$((SECONDS - began))" >>.build/molecule/timings
      status=1
    fi
  done
  return "$status"
}

stage_molecule() {
  local image failed=0 pid
  [[ -n ${molecule_queue_filled:-} ]] || molecule_fill_queue
  for image in "${molecule_images[@]}"; do # one build at a time, before this process's worker
    [[ -e "$molecule_queue.ready-$image" ]] || molecule_image_ready "$image"
  done
  local total=${FLEET_MTLS_MOLECULE_WORKERS:-2} name pids=()
  for ((name = 2; name <= total; name++)); do
    if [[ -n $demo_pid && $name == 2 ]]; then continue; fi # worker 2 is the one beside
    molecule_worker "$name" &
    pids+=("$!")
  done
  molecule_worker 1 || failed=1
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if [[ -n $demo_pid ]]; then # the worker beside, after the demo
    wait "$demo_pid" || failed=1
    demo_pid=""
  fi
  cat .build/molecule/worker-*.report 2>/dev/null
  local row
  while read -r row; do timings+=("  $row"); done < <(sort .build/molecule/timings 2>/dev/null)
  local ran
  ran=$(grep -c . .build/molecule/timings 2>/dev/null || true)
  if [[ -s $molecule_queue || $ran != "$(cat "$molecule_queue.count")" ]]; then
    echo "Molecule ran ${ran:-0} of $(cat "$molecule_queue.count") jobs; never run:" >&2
    cat "$molecule_queue" >&2
    failed=1
  fi
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
  rm -f .build/demo/stage.seconds .build/demo/stage.status
  with_molecule=""
  if [[ " ${stages[*]} " == *" molecule "* ]]; then
    molecule_fill_queue
    with_molecule=yes
  fi
  (
    began=$SECONDS
    status=0
    bash scripts/test.sh demo >.build/demo/stage.log 2>&1 || status=$?
    echo "$((SECONDS - began))" >.build/demo/stage.seconds
    if ((status == 0)) && [[ -n $with_molecule ]]; then
      # The lab's image, built by the demo; the first job of the queue is its default scenario.
      # Ready before the demo's status is out: the molecule stage then never builds it as well.
      molecule_image_ready "${molecule_images[0]}" >.build/molecule/worker-2.build.log 2>&1 || status=$?
    fi
    echo "$status" >.build/demo/stage.status
    if ((status == 0)) && [[ -n $with_molecule ]]; then
      molecule_worker 2 || status=$?
    fi
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
  current=""
done
current=""
join_demo
echo "=== all stages passed"
