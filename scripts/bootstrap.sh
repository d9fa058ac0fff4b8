#!/usr/bin/env bash
# Prepare a Debian 12/13 machine (as root) to run the demo and the tests:
# Debian packages, a virtualenv with pinned versions, and the collection
# linked where Ansible looks for it. Safe to run again: it does only what is
# missing or out of date.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
requirements="$repo/tests/requirements.txt"

apt_packages=(python3 python3-venv python3-cryptography openssl curl git rsync podman runc debootstrap uidmap iproute2)

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
ln -sfn "$repo" "$collections/mtls"
