#!/usr/bin/env bash
# galaxy-importer, what Galaxy runs on an uploaded collection, on the tarball built from this
# checkout: the metadata, every plugin's documentation (ansible-doc), the README and docs/,
# the changelog, meta/execution-environment.yml's files, and ansible-lint with the
# collection's own .ansible-lint. Settings: tests/importer/galaxy-importer.cfg.
#
#   tests/importer/run.sh       (work directory: .build/importer, emptied first)
#
# It fails when galaxy-importer fails or logs any WARNING or ERROR line (Galaxy shows them in
# the import log); it prints those lines. galaxy-importer runs from its own virtualenv,
# made by scripts/pinned-venv.sh from tests/importer/requirements.txt: its
# ansible-lint, ansible-compat and ansible-core pins are not the test virtualenv's.
# scripts/test.sh runs it at the end of the lint stage.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
dir="$repo/.build/importer"
venv=$(bash scripts/pinned-venv.sh importer tests/importer/requirements.txt)

rm -rf "$dir"
mkdir -p "$dir"
ansible-galaxy collection build --output-path "$dir" >/dev/null
tarballs=("$dir"/fleet-mtls-*.tar.gz)
if ((${#tarballs[@]} != 1)) || [[ ! -f ${tarballs[0]} ]]; then
  echo "tests/importer/run.sh: expected one collection tarball in $dir" >&2
  exit 1
fi

# Only the config file decides: galaxy-importer lets GALAXY_IMPORTER_<OPTION> variables override it.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^GALAXY_IMPORTER_' || true)
log="$dir/importer.log"
status=0
# From $dir: galaxy-importer writes its result (importer_result.json) to the current directory.
# Its virtualenv first on PATH: it runs that ansible-doc and ansible-lint. ANSIBLE_HOME of its
# own: ansible-lint, offline, writes the stubs of .ansible-lint's mock_modules under it and
# deletes them when it ends; under the shared ~/.ansible, another ansible-lint run on this
# machine could delete them mid-run (the awx role's modules then unresolved), or this one theirs.
(cd "$dir" && GALAXY_IMPORTER_CONFIG="$repo/tests/importer/galaxy-importer.cfg" PATH="$venv/bin:$PATH" \
  ANSIBLE_HOME="$dir/ansible-home" "$venv/bin/python" -m galaxy_importer.main "${tarballs[0]}") >"$log" 2>&1 \
  || status=$?

version=$(sed -n 's/^Importing with galaxy-importer //p' "$log")
found=$(grep -E '^[[:space:]]*\[?(WARNING|ERROR|CRITICAL)\]?:' "$log" || true)
if [[ -n $found ]]; then
  echo "tests/importer/run.sh: galaxy-importer ${version:-?} reported (log: $log):" >&2
  echo "$found" >&2
fi
if ((status)); then
  echo "tests/importer/run.sh: galaxy-importer ${version:-?} failed (exit $status); the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit "$status"
fi
[[ -z $found ]] || exit 1
echo "galaxy-importer $version: $(basename "${tarballs[0]}") imported, no warning or error (log: $log)"
