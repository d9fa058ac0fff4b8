#!/usr/bin/env bash
# Make a freshly started test fleet (the lab, or a Molecule scenario's hosts)
# ready for Ansible over SSH, and prove its network works, before anything
# runs on it:
#
#   tests/fleet/settle.sh KNOWN_HOSTS NAME=CONTAINER=ADDRESS ...
#
# 1. waits until each host has made its SSH host key and sshd runs;
# 2. pins those host keys: KNOWN_HOSTS is written anew with one line per
#    host (its ADDRESS and its key), read from the container itself, so
#    Ansible checks host keys as on a real fleet;
# 3. checks that every host resolves every other host's NAME to that host's
#    ADDRESS on the fleet network; if not, says what is missing.
#
# It uses `podman exec` only to inspect the containers, never to configure
# them. Exit status: 0 ready, 1 not ready (with the reason on stderr).
set -euo pipefail

die() { echo "fleet: ERROR: $*" >&2; exit 1; }

(($# >= 2)) || die "usage: $0 KNOWN_HOSTS NAME=CONTAINER=ADDRESS ..."
known_hosts=$1
shift

names=() containers=() addresses=()
for spec in "$@"; do
  IFS='=' read -r name container address <<<"$spec"
  [[ -n $name && -n $container && -n $address ]] || die "bad host '$spec' (want NAME=CONTAINER=ADDRESS)"
  names+=("$name") containers+=("$container") addresses+=("$address")
done

lines=()
for i in "${!containers[@]}"; do
  container=${containers[$i]}
  # The host key is made at first boot (fleet-mtls-ssh-host-keys.service).
  if ! key=$(podman exec "$container" timeout 90 sh -c '
      until test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl -q is-active ssh.service; do
        sleep 0.2
      done
      cat /etc/ssh/ssh_host_ed25519_key.pub' 2>&1); then
    die "${names[$i]} ($container): sshd did not come up: $key"
  fi
  read -r type blob _ <<<"$key"
  lines+=("${addresses[$i]} $type $blob")
done
mkdir -p "$(dirname "$known_hosts")"
printf '%s\n' "${lines[@]}" >"$known_hosts.tmp"
mv -f "$known_hosts.tmp" "$known_hosts"

wrong=()
for i in "${!containers[@]}"; do
  # "name address" for every fleet host, as this host resolves it
  resolved=$(podman exec "${containers[$i]}" sh -c '
    for name in "$@"; do
      echo "$name $(getent ahostsv4 "$name" | awk "NR == 1 {print \$1}")"
    done' sh "${names[@]}")
  for j in "${!names[@]}"; do
    grep -qx "${names[$j]} ${addresses[$j]}" <<<"$resolved" ||
      wrong+=("${names[$i]} cannot resolve ${names[$j]} to ${addresses[$j]} ($(grep "^${names[$j]} " <<<"$resolved" | cut -d' ' -f2- | sed 's/^$/no answer/'))")
  done
done
if ((${#wrong[@]})); then
  backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
  printf 'fleet: %s\n' "${wrong[@]}" >&2
  die "the fleet's hosts do not find each other by name. Podman's network backend is '$backend';
  names resolve only with netavark and aardvark-dns. Fix: bash scripts/bootstrap.sh (installs
  netavark and aardvark-dns), keep CONTAINERS_CONF=tests/fleet/containers.conf (network_backend =
  \"netavark\"), then recreate the fleet (scripts/lab.sh down && scripts/lab.sh up)."
fi
echo "fleet: ${#names[@]} hosts ready: SSH host keys pinned in $known_hosts, every name resolves on every host"
