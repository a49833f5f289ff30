import os
import sys

# One BLAS thread for numpy: the log-mel front end's small matrix products run ~17x slower on a
# busy 2-core machine with OpenBLAS's thread pool (benchmarks/inference.py). Users may override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> int:
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
