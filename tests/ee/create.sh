#!/usr/bin/env bash
# The execution environment's build context, made and checked without building an image.
#
#   tests/ee/create.sh [DIR]      (default: .build/ee; DIR is emptied first)
#
# 1. The collection is built (ansible-galaxy collection build) into DIR and installed from
#    that tarball into DIR/collections, as an execution environment gets it.
# 2. ansible-builder introspect of DIR/collections must report, from the installed
#    collection's meta/execution-environment.yml, every line of the checkout's
#    requirements.txt (python) and bindep.txt (system): they ship and are read.
# 3. ansible-builder create of extensions/ee/execution-environment.yml, copied into DIR
#    beside the tarball: DIR/context must hold a Containerfile that installs ansible-core
#    and ansible-runner as tests/requirements.txt pins them, and the tarball.
# scripts/test.sh runs it in the sanity stage; tests/ee/run.sh builds the image from
# DIR/context.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
dir=${1:-.build/ee}
fail() { echo "tests/ee/create.sh: $*" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/collections"
ansible-galaxy collection build --output-path "$dir" >/dev/null
tarballs=("$dir"/fleet-mtls-*.tar.gz)
if ((${#tarballs[@]} != 1)) || [[ ! -f ${tarballs[0]} ]]; then fail "expected one collection tarball in $dir"; fi
ANSIBLE_COLLECTIONS_PATH="$dir/collections" ansible-galaxy collection install --offline --force -p "$dir/collections" \
  "${tarballs[0]}" >/dev/null

# What ansible-builder introspect reports for the installed collection, against the
# checkout's requirements.txt and bindep.txt (their lines without comments).
ansible-builder introspect --sanitize "$dir/collections" >"$dir/introspect.txt" \
  || fail "ansible-builder introspect failed on the collection built from this checkout"
python3 - "$dir/introspect.txt" <<'PY'
import sys

import yaml

with open(sys.argv[1]) as stream:
    found = yaml.safe_load(stream) or {}
for kind, source in (("python", "requirements.txt"), ("system", "bindep.txt")):
    with open(source) as stream:
        wanted = [line.split("#")[0].strip() for line in stream if line.split("#")[0].strip()]
    reported = found.get(kind) or []
    missing = [line for line in wanted if "%s  # from collection fleet.mtls" % line not in reported]
    if not wanted or missing:
        sys.exit("ansible-builder introspect did not report %s's %s from the built collection: %s (it reported %s)"
                 % (source, kind, missing or "nothing declared", reported))
    print("introspect, %s: %s" % (kind, "; ".join(reported)))
PY

cp extensions/ee/execution-environment.yml "$dir/"
ansible-builder create -f "$dir/execution-environment.yml" -c "$dir/context" >/dev/null
containerfile=$dir/context/Containerfile
[[ -f $containerfile ]] || fail "ansible-builder create wrote no $containerfile"
[[ -f $dir/context/_build/collection/$(basename "${tarballs[0]}") ]] || fail "the tarball is not in $dir/context/_build"
for package in ansible-core ansible-runner; do
  pin=$(grep -i "^$package==" tests/requirements.txt) || fail "tests/requirements.txt pins no $package"
  grep -q "^ARG ANSIBLE_INSTALL_REFS=.*\b$pin\b" "$containerfile" \
    || fail "$containerfile does not install $pin (tests/requirements.txt's pin)"
done
echo "ansible-builder create: $containerfile ($(grep -c '^FROM' "$containerfile") stages), $(basename "${tarballs[0]}")"
