#!/usr/bin/env bash
# Build the execution environment and run a job in it the way AWX / Automation Controller does.
#
#   tests/ee/run.sh [--no-build]
#
# 1. The base image localhost/fleet-mtls-ee-base:debian12 (extensions/ee/base.Containerfile:
#    the Debian 12 test host image, made first by tests/fleet/build-images.sh when missing,
#    with pip).
# 2. The build context (tests/ee/create.sh .build/ee: the collection's tarball, its
#    requirements as ansible-builder reads them, ansible-builder create), then the image
#    localhost/fleet-mtls-ee:latest, podman build of that context. --no-build skips 1 and 2.
# 3. A job, as AWX's receptor runs one in an execution environment: the private data dir
#    tests/ee/runner (env/extravars, inventory, project/ee_check.yml; copied to
#    .build/ee/runner) goes through ansible-runner transmit, then ansible-runner worker in
#    the image, and ansible-runner process writes the artifacts back.
# 4. The artifacts: status successful and rc 0, and the job's summary (set_stats, the
#    playbook_on_stats event's artifact_data): fleet.mtls found in the image, its PKI demo's
#    four certificates matching their keys and chaining to their bundle, no refusal.
# Exits non-zero on any failure. Each step's seconds at the end. Not in scripts/test.sh.
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
usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  "") ;;
  --no-build) build="" ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
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
cp -r tests/ee/runner "$pdd"
echo "running project/ee_check.yml in $image (log: $dir/job.log)"
set +e
ansible-runner transmit "$pdd" -p ee_check.yml --ident ee-check |
  podman run --rm -i "$image" ansible-runner worker --private-data-dir=/runner |
  ansible-runner process "$pdd" --ident ee-check >"$dir/job.log" 2>&1
statuses=("${PIPESTATUS[@]}")
set -e
step_done job
if [[ ${statuses[*]} != "0 0 0" ]]; then
  tail -n 40 "$dir/job.log"
  fail "the job did not run through (transmit, worker, process exited ${statuses[*]})"
fi

python3 - "$pdd/artifacts/ee-check" "$(awk '$1 == "version:" {print $2}' galaxy.yml)" <<'PY'
import json
import pathlib
import sys

artifacts, version = pathlib.Path(sys.argv[1]), sys.argv[2]
problems = []
status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else None
rc = (artifacts / "rc").read_text().strip() if (artifacts / "rc").exists() else None
if status != "successful" or rc != "0":
    problems.append("status %r, rc %r" % (status, rc))
events = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
stats = [event["event_data"] for event in events if event.get("event") == "playbook_on_stats"]
summary = (stats[-1].get("artifact_data") or {}).get("mtls_ee_check") if stats else None
print("artifacts: status %s, rc %s, %d job events" % (status, rc, len(events)))
if not summary:
    problems.append("the job published no mtls_ee_check summary (set_stats)")
else:
    found = {path: names["fleet.mtls"]["version"] for path, names in summary["collections"].items()
             if "fleet.mtls" in names}
    print("fleet.mtls found in the image: %s; ansible-core %s; cryptography %s"
          % (found, summary["ansible_core"], summary["cryptography"]))
    if found != {"/usr/share/ansible/collections/ansible_collections": version}:
        problems.append("fleet.mtls %s is not the one (and only one) in the image: %s" % (version, found))
    certificates = summary["certificates"]
    for host, facts in sorted(certificates.items()):
        print("  %s: serial %s, key matches %s, chains to the bundle %s"
              % (host, facts["serial"], facts["matches_key"], facts["chains_to_bundle"]))
        if not (facts["matches_key"] and facts["chains_to_bundle"]):
            problems.append("%s's certificate does not match its key or chain to its bundle" % host)
    if len(certificates) != 4:
        problems.append("%d certificates in the summary, not 4" % len(certificates))
    if summary["refusals"]:
        problems.append("identity_refusals refused: %s" % summary["refusals"])
for problem in problems:
    print("tests/ee/run.sh: %s" % problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "the job ran in $image as AWX runs one: successful"
