"""Train Red Heart: ``accelerate launch training/train.py --config training/configs/small.yaml``.

Works as a script (``python training/train.py``, ``accelerate launch training/train.py``) and as a module
(``python -m redheart.training.train``). See :mod:`redheart.training.run` for the options.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Shared CPUs: OpenMP threads that spin while waiting make torch up to 10x slower when other processes compete
# for the cores (measured on the 2-core development machine); passive waiting costs little on an idle machine.
# Set before torch is imported; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __package__ in (None, ""):
    # Run as a script: this folder would otherwise shadow installed packages (training/evaluate.py is not the
    # `evaluate` library), so drop it from the path and use the installed `redheart` package.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    from redheart.training.run import main
else:
    from .run import main

if __name__ == "__main__":
    sys.exit(main())
