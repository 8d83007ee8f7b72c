"""Heading-aware chunks: every passage carries its document title and heading path.

Markdown is split on headings first (langchain-text-splitters), then long sections are cut on paragraph
and sentence boundaries. Chunk ids are stable (``source#n``) and each chunk has a content hash, so an
unchanged passage is never embedded twice.
"""

from __future__ import annotations

import hashlib

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from bot.engines.chunk import Chunk
from ingestion.loaders import SourceDocument

HEADERS = [("#" * n, f"h{n}") for n in range(1, 7)]
CHUNK_CHARS = 600
OVERLAP_CHARS = 80


def split_document(doc: SourceDocument, chunk_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Cut one document into chunks; the document title heading is not repeated in the heading path."""
    sections = MarkdownHeaderTextSplitter(HEADERS, strip_headers=True).split_text(doc.markdown)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_chars,
        chunk_overlap=OVERLAP_CHARS,
        separators=["\n\n", "\n- ", "\n", ". ", " ", ""],
        keep_separator="end",
    )
    chunks: list[Chunk] = []
    for section in sections:
        headings = [section.metadata[k] for _, k in HEADERS if k in section.metadata]
        if headings and headings[0] == doc.title:
            headings = headings[1:]
        for piece in splitter.split_text(section.page_content):
            piece = piece.strip()
            if len(piece) < 3:
                continue
            chunk = Chunk(
                id=f"{doc.source}#{len(chunks)}",
                source=doc.source,
                title=doc.title,
                url=doc.url,
                date=doc.date,
                headings=headings,
                text=piece,
            )
            chunk.hash = hashlib.sha256(chunk.embedding_text().encode("utf-8")).hexdigest()[:32]
            chunks.append(chunk)
    return chunks
