"""Griffe extension: Sphinx roles in docstrings become mkdocstrings cross-references.

The docstrings use Sphinx roles (``:class:`CEC```, ``:func:`~cec.align.render```); mkdocs does
not know them and printed them raw. This extension, listed under the python handler's
``extensions`` in mkdocs.yml, rewrites each role when the docs are built (the source stays as
it is) into an *optional* autorefs link: a link where the target is documented on the site,
plain code where it is not (so ``mkdocs build --strict`` never fails on a name that has no page).
Relative names resolve in the scope of the object whose docstring holds them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj):`(~?)([^`<>]+?)`")


def _resolve(obj: Any, target: str) -> str:
    first, _, rest = target.partition(".")
    if first in ("cec", "cec_distill"):
        return target
    scope = obj if obj.is_module or obj.is_class else obj.parent
    try:
        path = scope.resolve(first)
    except Exception:  # noqa: BLE001 - unknown name: link it as written (optional, no warning)
        return target
    return f"{path}.{rest}" if rest else path


def _rewrite(obj: Any, text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        tilde, target = m.group(2), m.group(3).strip()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        ident = html.escape(_resolve(obj, target), quote=True)
        return f'<autoref identifier="{ident}" optional><code>{html.escape(shown)}</code></autoref>'

    return ROLE.sub(sub, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: Any, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
