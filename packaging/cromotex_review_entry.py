"""PyInstaller entry point for the CroMoTEX Review desktop app.

Kept outside the packages so that PyInstaller analyses `app.main` as a normal
import. The frozen app accepts the same arguments as `cromotex-review`.
"""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
