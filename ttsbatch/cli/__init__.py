"""The ``ttsbatch`` command: a composition root (it alone, with the executors, imports both sides).

:mod:`.main` holds the entry point, ``synth`` and the imitation provider's
command; :mod:`.client` the API's clients and servers (``submit``, ``api``,
``beat``, …); :mod:`.cluster` the workers, ``resume``, ``cancel`` and ``dev``.
"""
