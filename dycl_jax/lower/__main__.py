"""``python -m dycl_jax.lower --coverage``: list registered overloads and missing core-ATen ops."""

from __future__ import annotations

import argparse

from dycl_jax import lower  # noqa: F401  (fills the table)
from dycl_jax.lower.coverage import report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dycl_jax.lower")
    parser.add_argument("--coverage", action="store_true", help="print the op coverage report")
    args = parser.parse_args()
    if args.coverage:
        print(report())
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
