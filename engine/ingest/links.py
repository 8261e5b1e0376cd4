"""Where a chunk points: a repository blob with line anchors, a page on the docs site, or — for a plain folder
with neither — the engine's own read-only copy of the file (``/source/<kb>/<path>?lines=a-b#La``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote


def slugify(heading: str) -> str:
    """A heading's anchor as GitHub and most docs sites render it."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


@dataclass(frozen=True)
class LinkBuilder:
    repo_url: str | None = None
    ref: str | None = None
    #: path prefix -> docs-site base URL; the rest of the path, less its suffix, is appended.
    url_map: dict[str, str] = field(default_factory=dict)
    #: where the ingested folder sits in the repository ("docs/" when only docs/ was ingested)
    repo_prefix: str = ""
    #: the engine's source view for this knowledge base ("https://…/source/<kb>"): links for a plain folder
    source_base: str | None = None

    def served(self, path: str) -> bool:
        """Whether links to ``path`` go to the engine's own copy of it (no repository, no docs-site mapping)."""
        return (self.source_base is not None and not self.repo_url
                and not any(path.startswith(prefix) for prefix in self.url_map))

    def url(self, path: str, start_line: int = 0, end_line: int = 0, heading: str | None = None) -> str:
        for prefix in sorted(self.url_map, key=len, reverse=True):
            if path.startswith(prefix):
                rest = path[len(prefix) :].rsplit(".", 1)[0]
                rest = re.sub(r"(^|/)(index|README)$", "", rest)
                anchor = f"#{slugify(heading)}" if heading else ""
                return self.url_map[prefix].rstrip("/") + ("/" + rest if rest else "") + anchor
        if self.repo_url:
            base = f"{self.repo_url.rstrip('/')}/blob/{self.ref or 'HEAD'}/{self.repo_prefix}{path}"
            if start_line:
                return f"{base}#L{start_line}-L{end_line}" if end_line > start_line else f"{base}#L{start_line}"
            return base
        if self.source_base is not None and self.served(path):
            base = f"{self.source_base.rstrip('/')}/{quote(path)}"
            if start_line:
                return f"{base}?lines={start_line}-{max(start_line, end_line)}#L{start_line}"
            return base
        return path
