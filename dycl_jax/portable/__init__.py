"""The torch-free side of dycl_jax: what a saved artifact needs to run (``dycl_jax.load``).

Nothing under this package imports torch; ``tests/portable`` checks that in a subprocess where
importing torch fails.
"""
