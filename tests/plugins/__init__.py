"""A user's own package, as the output-plugin tests use it: nothing in it is part of lit_al."""
