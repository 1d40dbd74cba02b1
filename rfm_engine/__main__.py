"""``python -m rfm_engine``: the same as the ``rfm-engine`` command."""

from .cli import main

if __name__ == "__main__":
    main()
