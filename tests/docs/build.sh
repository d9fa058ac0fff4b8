#!/usr/bin/env bash
# The collection's docs site, as antsibull-docs builds it: every module, plugin and role,
# and the guides of docs/*.md (docs/docsite/extra-docs.yml says how they get in).
#
#   bash tests/docs/build.sh      HTML in .build/docsite/build/html (index.html)
#
# 1. antsibull-docs lint-collection-docs --plugin-docs on the checkout: the plugins' and
#    roles' documentation (schema, markup, references) and the extra docs.
# 2. antsibull-docs sphinx-init and, in its place in .build/docsite, what the build.sh it
#    generates does (antsibull-docs collection, then sphinx-build -W), with each guide put
#    in its stand-in's place in between. The collection is the checkout, which Ansible finds
#    through the link under .build/collections.
# 3. A page for every module, filter, lookup, role and guide.
# Intersphinx lookups are off: they fetch the inventories of the Python, Jinja and Ansible
# docs over the internet, which this build does not reach. References into those docs show
# as text (tests/docs/site_refs.py); every other Sphinx warning fails the build.
# Its own virtualenv (tests/docs/requirements.txt), made by scripts/pinned-venv.sh. scripts/test.sh runs it in the lint stage.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
fail() { echo "tests/docs/build.sh: $*" >&2; exit 1; }

venv=$(bash scripts/pinned-venv.sh docs tests/docs/requirements.txt)
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$repo/.build/collections"
[[ "$(readlink "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/fleet/mtls")" == "$repo" ]] \
  || fail "Ansible finds the collection through .build/collections/ansible_collections/fleet/mtls: run scripts/bootstrap.sh"

antsibull-docs lint-collection-docs --plugin-docs .

site="$repo/.build/docsite"
rm -rf "$site"
mkdir -p "$site"
chmod 0755 "$site" # antsibull-docs writes only into a directory that no one else may write to
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$site" \
  --project fleet.mtls --title fleet.mtls --copyright 'fleet.mtls maintainers' fleet.mtls >/dev/null
cat >>"$site/conf.py" <<EOF

# Added by tests/docs/build.sh: no intersphinx lookups (they need the internet), the
# Markdown guides (MyST), and the references the site cannot resolve by itself.
intersphinx_mapping = {}
import sys
sys.path.insert(0, '$repo/tests/docs')
extensions += ['myst_parser', 'site_refs']
fleet_mtls_guides = '$repo/docs'
EOF

cd "$site"
mkdir -p rst
chmod og-w rst
antsibull-docs --config-file antsibull-docs.cfg collection --use-current --cleanup everything --fail-on-error \
  --dest-dir rst fleet.mtls
pages=rst/collections/fleet/mtls
for guide in "$repo"/docs/*.md; do
  name=$(basename "$guide" .md)
  [[ -f "$pages/docsite/$name.rst" ]] || fail "docs/$name.md has no stand-in docs/docsite/rst/$name.rst"
  title=$(head -n 1 "$guide")
  grep -qxF "${title#\# }" "$pages/docsite/$name.rst" \
    || fail "docs/docsite/rst/$name.rst: its title is not docs/$name.md's ($title)"
  rm "$pages/docsite/$name.rst"
  cp "$guide" "$pages/docsite/"
done
cp -r "$repo/docs/images" "$pages/docsite/"
sphinx-build -M html rst build -c . -W --keep-going -q

missing=()
html=build/html/collections/fleet/mtls
for path in "$repo"/plugins/modules/*.py "$repo"/plugins/filter/*.yml "$repo"/plugins/lookup/*.py \
  "$repo"/roles/*/meta/argument_specs.yml "$repo"/docs/*.md; do
  case $path in
    */plugins/modules/*) page=$(basename "$path" .py)_module.html ;;
    */plugins/filter/*) page=$(basename "$path" .yml)_filter.html ;;
    */plugins/lookup/*) page=$(basename "$path" .py)_lookup.html ;;
    */roles/*) page=$(basename "$(dirname "$(dirname "$path")")")_role.html ;;
    *) page=docsite/$(basename "$path" .md).html ;;
  esac
  [[ -s "$html/$page" ]] || missing+=("$page")
done
((${#missing[@]} == 0)) || fail "no page in $site/$html for: ${missing[*]}"
echo "docs site: $site/build/html/index.html"
