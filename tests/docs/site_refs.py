"""Sphinx extension of the collection's docs site (tests/docs/build.sh): two kinds of
reference the site cannot resolve by itself, resolved so that Sphinx can treat every
other warning as an error.

- The Markdown guides (docs/*.md) link to files of the repository outside docs/, which
  the site has no copy of: a role's README links to the role's page, a module's source
  to the module's page, and any other file that exists shows as its link text, unlinked
  (the repository has no public address to link to yet). A link to a file that is not
  there is left to MyST, which warns.
- The build turns intersphinx off (no lookups over the internet), so the generated
  pages' references into the Ansible documentation (the common return values, the
  configuration settings, other collections' plugins) show as their text, unlinked.
  Any other undefined label still warns.
"""

from __future__ import annotations

from pathlib import Path

from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.nodes import make_refnode

COLLECTION = "fleet.mtls"
ANSIBLE_DOCS_LABELS = {"common_return_values", "ansible_configuration_settings"}


def _page_label(path: Path) -> str | None:
    """The label of the site's page for a file of the repository, if it has one."""
    parts = path.parts
    if len(parts) == 3 and parts[0] == "roles" and parts[2] == "README.md":
        return f"ansible_collections.{COLLECTION}.{parts[1]}_role"
    if len(parts) == 3 and parts[:2] == ("plugins", "modules") and path.suffix == ".py":
        return f"ansible_collections.{COLLECTION}.{path.stem}_module"
    return None


class RepositoryLinks(SphinxPostTransform):
    default_priority = 8  # before MyST's resolver (9), which warns on what it cannot find

    def run(self, **kwargs) -> None:
        guides = Path(self.config.fleet_mtls_guides)
        repo = guides.parent.resolve()
        labels = self.env.get_domain("std").anonlabels  # every label, with a title or not
        for node in list(self.document.findall(addnodes.pending_xref)):
            target = node.get("reftarget", "")
            if node.get("reftype") != "myst" or node.get("refdomain") == "doc" or not target.startswith("../"):
                continue
            path = (guides / target.split("#", 1)[0]).resolve()
            if not path.exists() or not path.is_relative_to(repo):
                continue
            label = _page_label(path.relative_to(repo))
            if label is None:
                node.replace_self(node[0].deepcopy())
            elif label in labels:
                docname, labelid = labels[label]
                node.replace_self(
                    make_refnode(self.app.builder, node["refdoc"], docname, labelid, node[0].deepcopy())
                )


def _ansible_docs_ref(app, env, node, contnode):
    target = node.get("reftarget", "")
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    if target in ANSIBLE_DOCS_LABELS or (
        target.startswith("ansible_collections.") and not target.startswith(f"ansible_collections.{COLLECTION}.")
    ):
        return contnode
    return None


def setup(app):
    app.add_config_value("fleet_mtls_guides", "", "env")
    app.add_post_transform(RepositoryLinks)
    # After intersphinx (priority 500), were it given inventories.
    app.connect("missing-reference", _ansible_docs_ref, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
