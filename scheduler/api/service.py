"""Kept only while :mod:`scheduler.api.app` imports :class:`Services` from here.

The API's work moved to modules of one concept each (:mod:`scheduler.api.services`,
``submission``, ``views``, ``rendering``, ``control``, ``results``); delete
this module once ``app`` imports ``scheduler.api.services``.
"""

from scheduler.api.services import Services

__all__ = ["Services"]
