"""Development tooling: service launchers (Redis, SeaweedFS), the dev stack, the imitation provider.

Used by ``ttsbatch dev``, the test suite and the benchmarks; nothing in the
contract, ``scheduler`` or ``worker`` imports it.
"""
