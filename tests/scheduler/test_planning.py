"""Planning: a document's metadata and cover go into its plan, and the cover into the store."""

from __future__ import annotations

from pathlib import Path

from scheduler.ingest import ingest_text
from scheduler.planning import plan_into
from ttsbatch import keys
from ttsbatch.manifests import read_manifest
from ttsbatch.models import BookInfo, Cover, EngineSpec, JobOptions
from ttsbatch.storage.local import LocalStore

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
OPTIONS = JobOptions(engine=EngineSpec(engine="espeak"), max_chars=60)


def test_planning_stores_the_cover_beside_the_source_and_names_it_in_the_plan(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    info = BookInfo(title="The Lighthouse", author="Ann Keeper", language="en")
    document = ingest_text("The lamp was lit at dusk.", name="book").model_copy(
        update={"info": info, "cover": Cover(media_type="image/jpeg", data=JPEG)}
    )
    manifest, _, new = plan_into(store, [document], OPTIONS)
    plan = manifest.documents[0]
    assert new
    assert plan.info == info
    assert plan.cover == "cover.jpg"
    assert keys.output_key(manifest.job_id, plan.doc, plan.cover) == (
        f"jobs/{manifest.job_id}/out/book.cover.jpg"
    )
    assert store.read(f"jobs/{manifest.job_id}/out/book.cover.jpg") == JPEG
    assert store.read(f"jobs/{manifest.job_id}/out/book.source.txt") == document.text.encode()
    assert read_manifest(store, manifest.job_id).documents[0] == plan


def test_planning_a_document_without_a_cover_stores_none(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    document = ingest_text("The lamp was lit at dusk.", name="book")
    manifest, _, _ = plan_into(store, [document], OPTIONS)
    plan = manifest.documents[0]
    assert plan.cover is None and plan.info == BookInfo()
    assert not list((tmp_path / "store").rglob("*.cover.*"))


def test_a_png_cover_is_stored_as_png(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    cover = Cover(media_type="image/png", data=b"\x89PNG\r\n\x1a\n")
    document = ingest_text("The lamp.", name="book").model_copy(update={"cover": cover})
    manifest, _, _ = plan_into(store, [document], OPTIONS)
    assert manifest.documents[0].cover == "cover.png"
    assert store.exists(f"jobs/{manifest.job_id}/out/book.cover.png")
