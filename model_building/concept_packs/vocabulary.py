"""One concept of a knowledge base (:class:`VocabEntry`) and the JSONL vocabulary format.

Vocabulary file (JSON Lines, UTF-8), one concept per line::

    {"id": "http://...", "label": "manage staff", "description": "...",
     "aliases": ["lead staff"], "parent": "http://...", "key": "optional-feature-name"}

``id`` and ``label`` are required. ``key`` (the rank_features feature name) defaults to the
id made safe: letters, digits, '_' and '-' only (anything else becomes '-'; for URIs the last
path segment is used, prefixed by ``--key-prefix``). Keys must be unique.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class VocabularyError(ValueError):
    """A vocabulary file is malformed; the message names the line."""


@dataclass
class VocabEntry:
    id: str
    label: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    parent: str | None = None
    key: str = ""
    text: str | None = None  # what gets embedded; derived when None

    def embedding_text(self) -> str:
        """Label, aliases and description in one text (what the encoder embeds)."""
        if self.text:
            return self.text
        parts = [self.label.strip()]
        if self.aliases:
            parts.append(", ".join(a.strip() for a in self.aliases if a.strip()))
        if self.description.strip():
            parts.append(self.description.strip())
        return ". ".join(p for p in parts if p)


def concept_key(raw_id: str, prefix: str = "") -> str:
    """Feature-name-safe key from an id: last URI segment, [A-Za-z0-9_-] only."""
    s = raw_id.strip()
    if "://" in s or s.startswith("urn:"):
        s = re.split(r"[/#:]", s.rstrip("/#"))[-1]
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", s).strip("-")
    key = f"{prefix}{s}" if prefix else s
    if not key or not _KEY_RE.match(key):
        raise VocabularyError(f"cannot derive a feature-name-safe key from id {raw_id!r}")
    return key


def load_vocab_jsonl(path: str | Path, key_prefix: str = "", limit: int | None = None) -> list[VocabEntry]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise VocabularyError(f"vocabulary file not found: {p}")
    entries: list[VocabEntry] = []
    seen: dict[str, int] = {}
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise VocabularyError(f"{p}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise VocabularyError(f"{p}:{n}: each line must be a JSON object")
            for req in ("id", "label"):
                if not isinstance(row.get(req), str) or not row[req].strip():
                    raise VocabularyError(f"{p}:{n}: missing or empty {req!r}")
            aliases = row.get("aliases") or []
            if isinstance(aliases, str):
                aliases = [aliases]
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise VocabularyError(f"{p}:{n}: 'aliases' must be a list of strings")
            desc = row.get("description") or ""
            if not isinstance(desc, str):
                raise VocabularyError(f"{p}:{n}: 'description' must be a string")
            key = row.get("key") or concept_key(row["id"], key_prefix)
            if not _KEY_RE.match(key):
                raise VocabularyError(f"{p}:{n}: key {key!r} may only hold letters, digits, '_' and '-'")
            if key in seen:
                raise VocabularyError(f"{p}:{n}: duplicate key {key!r} (first on line {seen[key]})")
            seen[key] = n
            entries.append(
                VocabEntry(
                    id=row["id"].strip(), label=row["label"].strip(), description=desc, aliases=aliases,
                    parent=row.get("parent"), key=key,
                )
            )
            if limit is not None and len(entries) >= limit:
                break
    if not entries:
        raise VocabularyError(f"{p}: no concepts")
    return entries
