"""The two executors, composition roots: the local one and the distributed one.

Each takes ingested documents and options and returns a finished job:
:mod:`.local` in this process (threads for provider engines, processes for
espeak, the audio assembled in order as chunks arrive), :mod:`.distributed`
through Celery workers and the store. Nothing in ``scheduler``, ``worker`` or
the contract imports them.
"""
