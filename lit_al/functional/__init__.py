"""Pure array functions: scores and selections, no Lightning and no model.

Nothing here imports the rest of the project; every function takes NumPy arrays
(or torch tensors where stated) and returns NumPy arrays. torch is imported when a
function that computes with it first runs (``lazy.LazyModule``), so the NumPy-only
functions, and the strategies built on them, load without it.
"""
