#!/usr/bin/env bash
# A virtualenv of Debian's Python with exactly the pinned requirements of one tool; prints its path:
#
#   venv=$(bash scripts/pinned-venv.sh NAME REQUIREMENTS)
#
# The test tools whose pins clash with the test virtualenv's (ansible-test sanity, the docs
# site, galaxy-importer) each get one of their own. Kept outside the checkout, like the test
# fleet's images and the gunicorn virtualenvs of the unit stage: a clean clone (CI) finds it
# made. It is named by the requirements' sha256, so a change of pins makes a new one (and
# removes the tool's older ones); a half-made one (no .done) is made again. A lock keeps two
# runs from making the same one at once.
set -euo pipefail
name=$1 requirements=$2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/fleet-mtls"
sha=$(sha256sum "$requirements" | cut -c1-16)
venv="$cache/venv-$name-$sha"
mkdir -p "$cache"
exec 9>"$cache/venv-$name.lock"
flock 9
if [[ ! -f "$venv/.done" ]]; then
  echo "creating $venv (pinned: $requirements)" >&2
  for old in "$cache/venv-$name-"*; do
    if [[ -d $old ]]; then rm -rf "$old"; fi
  done
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.done"
fi
echo "$venv"
