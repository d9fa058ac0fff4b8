#!/usr/bin/env bash
# Run the molecule scenario on the test-fleet images, one image after the
# other, and print how long each run took.
#
#   tests/fleet/molecule.sh [debian12|debian13|all] [molecule args...]
#
# Default: all images, `molecule test -s default`. Extra arguments replace
# `test` (the scenario stays `default` unless -s/--scenario-name is given):
#
#   tests/fleet/molecule.sh debian13                 # full test on trixie
#   tests/fleet/molecule.sh debian12 converge        # keep the fleet up
#   tests/fleet/molecule.sh debian12 login --host web1
#   tests/fleet/molecule.sh debian12 destroy
#
# It prepares everything first: the virtualenv (scripts/bootstrap.sh), the
# images (tests/fleet/build-images.sh, cached), CONTAINERS_CONF and PATH.
# Each image gets its own container/network names (mtls-debian12-*) and its
# own molecule state under .build/molecule/<image>/<scenario>/, so switching images
# or scenarios never reuses another one's state. Logs: .build/molecule/<image>-<scenario>.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

images=()
case "${1:-all}" in
  debian12 | debian13) images=("$1"); shift ;;
  all) images=(debian12 debian13); if (($#)); then shift; fi ;;
  *) images=(debian12 debian13) ;; # no image given: the args are molecule's
esac

args=("$@")
((${#args[@]})) || args=(test)
scenario=""
previous=""
for a in "${args[@]}"; do
  case "$previous" in -s | --scenario-name) scenario=$a ;; esac
  case "$a" in --scenario-name=*) scenario=${a#*=} ;; -s?*) scenario=${a#-s} ;; esac
  previous=$a
done
if [[ -z "$scenario" ]]; then
  scenario=default
  args+=(-s default)
fi

bash "$repo/scripts/bootstrap.sh"
"$here/build-images.sh" "${images[@]}"

export CONTAINERS_CONF="$here/containers.conf"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.build/collections"
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-$([[ -t 1 ]] && echo 1 || echo 0)}
unset MTLS_FLEET_NAME # names follow the image tag

cd "$repo" # molecule finds extensions/molecule from the collection root
mkdir -p "$repo/.build/molecule/debian12" "$repo/.build/molecule/debian13"

declare -A took result
status=0
for image in "${images[@]}"; do
  export MTLS_FLEET_IMAGE="localhost/fleet-mtls-host:$image"
  # State, log and lock per image and scenario: scenarios use their own
  # container names, so different ones may run side by side.
  export MOLECULE_EPHEMERAL_DIRECTORY="$repo/.build/molecule/$image/$scenario"
  log="$repo/.build/molecule/$image-$scenario.log"
  echo "=== molecule ${args[*]} on $MTLS_FLEET_IMAGE (log: ${log#"$repo"/})"
  start=$SECONDS
  # One run per image at a time: a second run would share names and state.
  if (
    flock -n 9 || { echo "molecule.sh: another run of $scenario on $image is in progress" >&2; exit 75; }
    molecule "${args[@]}" 2>&1 | tee "$log"
  ) 9>"$repo/.build/molecule/$image-$scenario.lock"; then
    result[$image]=passed
  else
    result[$image]="FAILED"
    status=1
  fi
  took[$image]=$((SECONDS - start))
  echo "=== $image: ${result[$image]} in ${took[$image]}s"
done

echo
echo "molecule ${args[*]}:"
for image in "${images[@]}"; do
  printf '  %-9s %-7s %4ss\n' "$image" "${result[$image]}" "${took[$image]}"
done
exit "$status"
