"""``python -m redheart.corpus IN OUT [options]`` (also under ``accelerate launch ... -m redheart.corpus``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
