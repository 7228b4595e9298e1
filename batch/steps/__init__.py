"""The steps of the relink, one module each (`batch.relink` runs them in order).

Arrows point one way: `types` (the dataclasses the steps hand each other) and `progress` import
no step; each step imports `types` and the helpers beside it, never a step that runs later, and
nothing here imports `batch.relink`, `batch.report` or `batch.engines`.
"""
