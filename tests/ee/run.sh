#!/usr/bin/env bash
# Build the execution environment and run a job in it the way AWX / Automation Controller does.
#
#   tests/ee/run.sh [--no-build] [--lab]
#
# 1. The base image localhost/fleet-mtls-ee-base:debian12 (extensions/ee/base.Containerfile:
#    the Debian 12 test host image, made first by tests/fleet/build-images.sh when missing,
#    with pip).
# 2. The build context (tests/ee/create.sh .build/ee: the collection's tarball, its
#    requirements as ansible-builder reads them, ansible-builder create), then the image
#    localhost/fleet-mtls-ee:latest, podman build of that context. --no-build skips 1 and 2.
# 3. A job, as AWX's receptor runs one in an execution environment: a private data dir
#    (copied to .build/ee/runner) goes through ansible-runner transmit, then ansible-runner
#    worker in the image, and ansible-runner process writes the artifacts back.
#    - By default, tests/ee/runner: project/ee_check.yml runs the collection's PKI demo in
#      the job's own container; no fleet.
#    - --lab: tests/ee/lab, a scheduled rotation (project/rotate.yml, the collection's
#      awx_rotate playbook) against the lab fleet, which must be up and converged
#      (scripts/demo.sh). Its inventory is the lab's (inventories/lab), the lab's SSH key is
#      the job's machine credential (env/ssh_key: ansible-runner loads it into the job's
#      ssh-agent), the lab's pinned host keys come with the project, and the job's
#      container joins the lab's network (mtls-lab).
# 4. The artifacts (tests/ee/artifacts.py): status successful and rc 0, and the job's summary
#    (set_stats, the playbook_on_stats event's artifact_data).
#    - By default: fleet.mtls found in the image, its PKI demo's four certificates matching
#      their keys and chaining to their bundle, no refusal.
#    - --lab: every host rotate.yml rotates reached and counted, nothing renewed, and no host
#      changed, failed or unreachable.
# Exits non-zero on any failure. Each step's seconds at the end. scripts/test.sh runs it with
# --lab in its demo stage, after the demo's second run.
#
# Environment:
#   FLEET_EE_IMAGE       the image to build and run (default localhost/fleet-mtls-ee:latest)
#   FLEET_EE_CA_BUNDLE   CA bundle mounted read-only into the build's steps, so that pip and
#                        apt in them trust what this machine trusts (a proxy that re-signs TLS);
#                        never copied into the image (default /etc/ssl/certs/ca-certificates.crt
#                        when readable; empty: none)
#   FLEET_EE_NO_CACHE=1  build both images without podman's layer cache (a cold build's time)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export CONTAINERS_CONF="$repo/tests/fleet/containers.conf"
image=${FLEET_EE_IMAGE:-localhost/fleet-mtls-ee:latest}
base=localhost/fleet-mtls-ee-base:debian12
dir=.build/ee
build=yes
job=check
usage() { sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
for arg in "$@"; do
  case "$arg" in
    --no-build) build="" ;;
    --lab) job=lab ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
fail() { echo "tests/ee/run.sh: $*" >&2; exit 1; }
timings=()
step_began=$SECONDS
step_done() { timings+=("$1 $((SECONDS - step_began))"); step_began=$SECONDS; }
print_timings() {
  local row
  echo "=== tests/ee/run.sh timing (seconds, on $(nproc) cores)"
  for row in "${timings[@]}"; do
    # shellcheck disable=SC2086 # a row is "name seconds"
    printf '%-12s %6s\n' $row
  done
  printf '%-12s %6s\n' total "$SECONDS"
}
trap print_timings EXIT

if [[ -n $build ]]; then
  ca_bundle=${FLEET_EE_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
  build_opts=()
  if [[ ${FLEET_EE_NO_CACHE:-} == 1 ]]; then build_opts+=(--no-cache); fi
  tests/fleet/build-images.sh debian12
  podman build "${build_opts[@]}" --quiet -f extensions/ee/base.Containerfile -t "$base" extensions/ee >/dev/null
  step_done base
  if [[ -n $ca_bundle && -r $ca_bundle ]]; then
    build_opts+=(--volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")
  fi
  bash tests/ee/create.sh "$dir"
  step_done create
  echo "building $image from $dir/context (log: $dir/build.log)"
  if ! podman build "${build_opts[@]}" -f "$dir/context/Containerfile" -t "$image" "$dir/context" \
    >"$dir/build.log" 2>&1; then
    tail -n 40 "$dir/build.log"
    fail "podman build of $dir/context failed"
  fi
  # The image this build replaced, untagged now (an execution environment on the test
  # fleet's base: both labels), as tests/fleet/build-images.sh removes its stale images.
  for stale in $(podman images --filter dangling=true --filter label=ansible-execution-environment=true \
    --filter label=fleet-mtls.recipe --format '{{.ID}}'); do
    podman rmi "$stale" >/dev/null 2>&1 || true
  done
  step_done build
fi
podman image exists "$image" || fail "no image $image: run without --no-build"

# The job. Artifacts go to the private data dir, as on AWX's control node.
pdd=$dir/runner
rm -rf "$pdd"
mkdir -p "$dir"
run_opts=()
if [[ $job == check ]]; then
  cp -r tests/ee/runner "$pdd"
  playbook=ee_check.yml
else
  lab_network=mtls-lab
  podman network exists "$lab_network" || fail "no lab network $lab_network: bring the lab up and converge it (scripts/demo.sh)"
  cp -r tests/ee/lab "$pdd"
  mkdir -p "$pdd/inventory"
  cp -r inventories/lab/. "$pdd/inventory/"
  install -m 0600 .build/ssh/id_ed25519 "$pdd/env/ssh_key"
  cp ".build/ssh/known_hosts/$lab_network" "$pdd/project/known_hosts"
  run_opts+=(--network "$lab_network")
  playbook=rotate.yml
fi
echo "running project/$playbook in $image (log: $dir/job.log)"
set +e
ansible-runner transmit "$pdd" -p "$playbook" --ident "ee-$job" |
  podman run --rm -i "${run_opts[@]}" "$image" ansible-runner worker --private-data-dir=/runner |
  ansible-runner process "$pdd" --ident "ee-$job" >"$dir/job.log" 2>&1
statuses=("${PIPESTATUS[@]}")
set -e
step_done job
if [[ ${statuses[*]} != "0 0 0" ]]; then
  tail -n 40 "$dir/job.log"
  fail "the job did not run through (transmit, worker, process exited ${statuses[*]})"
fi

if [[ $job == check ]]; then
  python3 tests/ee/artifacts.py check "$pdd/artifacts/ee-check" "$(awk '$1 == "version:" {print $2}' galaxy.yml)"
else
  # The hosts rotate.yml rotates: every lab host but the CA.
  mapfile -t rotated < <(ANSIBLE_CONFIG="$repo/ansible.cfg" ansible -i inventories/lab/hosts.yml 'all:!ca' \
    --list-hosts | tail -n +2 | tr -d ' ')
  if ! python3 tests/ee/artifacts.py lab "$pdd/artifacts/ee-lab" "${rotated[@]}"; then
    tail -n 40 "$dir/job.log"
    exit 1
  fi
fi
echo "the job ran in $image as AWX runs one: successful"
