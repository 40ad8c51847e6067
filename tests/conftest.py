"""Suite-wide settings: every conversion in the tests checks the program IR's invariants after
each stage (``dycl_jax.ir.verify``), so a stage that breaks one fails loudly wherever it shows."""

import os

os.environ.setdefault("DYCL_VERIFY", "1")
