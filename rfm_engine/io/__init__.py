"""Where data enters and leaves: the bottom layer.

Reading transactions (``sources``: files, DuckDB databases, DataFrames; ``columns``: the
column mapping; ``loading``: validation and cleaning into a DuckDB view; ``quality``: the
cleaning report), the optional CRM inputs (``crm_inputs``: schemas and reading),
customer-id and email normalisation (``identifiers``), and writing (``writers``: atomic,
all-or-nothing output files; ``manifest``: checksums and run-folder entries; ``_html``:
rendering the HTML reports' jinja2 templates), and the helpers every layer
shares: ``_validation`` (what counts as an int, a number, a date parameter) and
``_format`` (how reports print numbers).

May import: ``rfm_engine.errors``, ``rfm_engine.progress``, ``rfm_engine.plotting`` and
third-party packages; nothing else of the package (checked by the import contracts in
``pyproject.toml``).
"""
