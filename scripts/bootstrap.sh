#!/usr/bin/env bash
# Prepare a Debian 12/13 machine (as root) to run the demo and the tests:
# Debian packages, a virtualenv with pinned versions, and the collection
# linked where Ansible looks for it. Safe to run again: it does only what is
# missing or out of date.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
requirements="$repo/tests/requirements.txt"

# podman's netavark backend with aardvark-dns: without them podman falls back
# to CNI, whose networks have no name resolution, and the fleet's hosts could
# not reach each other by name (tests/fleet/containers.conf pins netavark);
# netavark sets the networks up with iptables, which podman only suggests.
# openssh-client: Ansible reaches the lab and the test fleet over SSH.
# prometheus: its promtool checks and unit-tests the shipped alert rules and
# parses what the metrics module writes.
# chromium, chromium-driver: the health report's browser test renders its HTML page headless.
# The shellcheck package: ansible-test sanity checks the shell scripts with it, and only
# warns (and skips that test) where it is missing; scripts/test.sh fails then.
apt_packages=(python3 python3-venv python3-cryptography openssl curl git rsync podman runc netavark aardvark-dns iptables
  debootstrap uidmap iproute2 openssh-client shellcheck prometheus chromium chromium-driver)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's own Python, as on a managed host; the virtualenv keeps the pinned
# controller tools away from the system.
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: creating $venv (pinned: tests/requirements.txt)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
fi

# Ansible finds the collection from a checkout through this link.
collections="$repo/.build/collections/ansible_collections/fleet"
mkdir -p "$collections"
# Only when wrong: other test stages may be importing through it right now.
[[ "$(readlink "$collections/mtls")" == "$repo" ]] || ln -sfn "$repo" "$collections/mtls"

# The key Ansible logs in to the lab and the test fleet with: made on this
# machine, kept under the ignored .build/, never committed. Its public half
# is mounted into every test host as root's authorized_keys.
ssh_dir="$repo/.build/ssh"
if [[ ! -s "$ssh_dir/id_ed25519" || ! -s "$ssh_dir/id_ed25519.pub" ]]; then
  mkdir -p "$ssh_dir"
  chmod 0700 "$ssh_dir"
  rm -f "$ssh_dir/id_ed25519" "$ssh_dir/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C "fleet-mtls test fleet ($(hostname))" -f "$ssh_dir/id_ed25519"
fi
