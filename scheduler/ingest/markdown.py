"""Markdown: what it says, not how it is marked up.

Headings start chapters: those of the shallowest level that occurs more than
once (``##`` chapters under a single ``#`` book title), or of the shallowest
level when none repeats. Emphasis marks, link targets, images (alt text
included) and code blocks are not spoken; link text, list items and table
cells are. HTML blocks are read as HTML. A YAML front matter block is skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .chapters import chapter_starts
from .html import extract
from .normalise import Block, block

_FRONT_MATTER = re.compile(r"---[ \t]*\n(?:.*\n){0,200}?(?:---|\.\.\.)[ \t]*(?:\n|$)")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def read_markdown(text: str, source_name: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """Extract paragraphs from Markdown; headings of the chosen level start chapters."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    front_matter = _FRONT_MATTER.match(text)
    if front_matter:
        text = text[front_matter.end() :]
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(text)
    blocks: list[Block] = []
    level = 0
    for token in tokens:
        if token.type == "heading_open":
            level = int(token.tag[1:])
        elif token.type == "heading_close":
            level = 0
        elif token.type == "inline":
            paragraph = block(_spoken(token.children or []), level)
            if paragraph:
                blocks.append(paragraph)
        elif token.type == "html_block":
            # Headings inside raw HTML are left to the Markdown outline.
            blocks.extend(Block(b.text) for b in extract(token.content, source_name).blocks)
    return blocks, chapter_starts(blocks, max_level=_chapter_level(blocks))


def _spoken(children: Sequence[Token]) -> str:
    parts: list[str] = []
    in_autolink = False
    for child in children:
        if child.type == "link_open":
            # An autolink's text is its URL, which is not read out.
            in_autolink = child.markup == "autolink"
        elif child.type == "link_close":
            in_autolink = False
        elif child.type in {"text", "text_special", "code_inline"} and not in_autolink:
            parts.append(child.content)
        elif child.type in {"softbreak", "hardbreak"} or (
            child.type == "html_inline" and _BREAK.fullmatch(child.content.strip())
        ):
            parts.append(" ")
    return "".join(parts)


def _chapter_level(blocks: Sequence[Block]) -> int:
    counts = Counter(b.level for b in blocks if b.level)
    if not counts:
        return 0
    repeated = [level for level, count in counts.items() if count > 1]
    return min(repeated) if repeated else min(counts)
