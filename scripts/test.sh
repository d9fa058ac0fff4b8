#!/usr/bin/env bash
# Every test of the collection, in the order that fails fastest:
#   unit         pytest of the PKI core, with the newest cryptography and with 38.0 (Debian 12's)
#   sanity       ansible-test sanity (no ignores), on a copy laid out as ansible_collections/fleet/mtls
#   lint         ansible-lint --profile production on roles and playbooks
#   integration  the modules through ansible-playbook on this host, with the venv's and Debian's
#                Python; then the PKI demo playbook, twice (the second run must change nothing)
#   molecule     the roles on systemd hosts in podman (Debian 12 and 13), when scenarios exist
# Usage: scripts/test.sh [STAGE ...]   (default: all, in that order)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/bootstrap.sh
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo/ansible.cfg"

stages=("$@")
((${#stages[@]})) || stages=(unit sanity lint integration molecule)
timings=()

old_cryptography="$repo/.build/cryptography-38"
stage_unit() {
  if [[ ! -f "$old_cryptography/.done" ]]; then
    rm -rf "$old_cryptography"
    pip install -q --disable-pip-version-check --no-deps --target "$old_cryptography" 'cryptography==38.0.4'
    touch "$old_cryptography/.done"
  fi
  PYTHONPATH="$repo/.build/collections" python -m pytest -q tests/unit
  PYTHONPATH="$repo/.build/collections:$old_cryptography" python -m pytest -q tests/unit
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
  run=(ansible-playbook -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3
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
  for image in debian12 debian13; do
    (
      status=0
      for scenario in "${scenarios[@]}"; do
        start=$SECONDS
        if tests/fleet/molecule.sh "$image" test -s "$scenario" >/dev/null 2>&1; then
          echo "$image/$scenario passed in $((SECONDS - start))s"
        else
          echo "$image/$scenario FAILED after $((SECONDS - start))s (log: .build/molecule/$image-$scenario.log)"
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
  echo "=== $stage"
  start=$SECONDS
  "stage_$stage"
  timings+=("$stage $((SECONDS - start))s")
done
echo "=== all stages passed: ${timings[*]}"
