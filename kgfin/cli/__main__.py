"""``python -m kgfin.cli``."""

from kgfin.cli import main

if __name__ == "__main__":
    main()
