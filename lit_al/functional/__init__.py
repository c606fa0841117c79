"""Pure array functions: scores and selections, no Lightning and no model.

Nothing here imports the rest of the project; every function takes NumPy arrays
(or torch tensors where stated) and returns NumPy arrays.
"""
