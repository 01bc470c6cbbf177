"""The worker side: engines, chunk synthesis, stitching, subtitles and Celery tasks."""
