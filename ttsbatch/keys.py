"""The storage key layout (architecture.md), relative to a store's prefix.

::

    jobs/<job_id>/manifest.json
    jobs/<job_id>/chunks/<doc>/<n:06d>.pcm
    jobs/<job_id>/chunks/<doc>/<n:06d>.json
    jobs/<job_id>/out/<doc>.<ext>     wav, pcm, timestamps.json, source.txt, srt, vtt
    jobs/<job_id>/assembly/<doc>/     the local executor's outputs in the making:
                                      audio.part, records.jsonl (its chunk records in
                                      order), words.part, srt.part, vtt.part
    jobs/<job_id>/assembly/.lock      held by the local run of the job
    jobs/<job_id>/assembly/slots      chunks on their way from pool processes
"""

from __future__ import annotations


def job_prefix(job_id: str) -> str:
    """Return the prefix that holds everything of one job."""
    return f"jobs/{job_id}/"


def manifest_key(job_id: str) -> str:
    """Return the key of a job's manifest."""
    return f"jobs/{job_id}/manifest.json"


def chunk_prefix(job_id: str, doc: str) -> str:
    """Return the prefix holding a document's chunk objects."""
    return f"jobs/{job_id}/chunks/{doc}/"


def chunk_pcm_key(job_id: str, doc: str, index: int) -> str:
    """Return the key of chunk ``index``'s raw s16le PCM."""
    return f"jobs/{job_id}/chunks/{doc}/{index:06d}.pcm"


def chunk_json_key(job_id: str, doc: str, index: int) -> str:
    """Return the key of chunk ``index``'s word timings (:class:`ChunkRecord`)."""
    return f"jobs/{job_id}/chunks/{doc}/{index:06d}.json"


def output_key(job_id: str, doc: str, suffix: str) -> str:
    """Return the key of a document output, e.g. ``suffix='timestamps.json'``."""
    return f"jobs/{job_id}/out/{doc}.{suffix}"


def assembly_key(job_id: str, doc: str, name: str) -> str:
    """Return the key of a file of the local executor's in-order assembly of ``doc``."""
    return f"jobs/{job_id}/assembly/{doc}/{name}"


def local_lock_key(job_id: str) -> str:
    """Return the key of the lock file a local run of the job holds."""
    return f"jobs/{job_id}/assembly/.lock"


def local_slots_key(job_id: str) -> str:
    """Return the key of the file through which pool processes hand chunks back."""
    return f"jobs/{job_id}/assembly/slots"


def document_outputs(job_id: str, doc: str, audio_suffix: str) -> dict[str, str]:
    """Return a document's outputs as ``{kind: key}``: audio, source, timestamps, srt, vtt."""
    return {
        "audio": output_key(job_id, doc, audio_suffix),
        "source": output_key(job_id, doc, "source.txt"),
        "timestamps": output_key(job_id, doc, "timestamps.json"),
        "srt": output_key(job_id, doc, "srt"),
        "vtt": output_key(job_id, doc, "vtt"),
    }
