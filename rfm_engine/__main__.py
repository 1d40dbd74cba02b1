"""``python -m rfm_engine``: the same as the ``rfm-engine`` command."""

from rfm_engine.cli import main  # absolute: spark-submit runs this file as a script

if __name__ == "__main__":
    main()
