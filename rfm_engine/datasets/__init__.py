"""Sample data: deterministic transactions, suppression, consent and CRM inputs.

``sample_data`` (``rfm-engine sample``: the Online Retail II layout used by the demo,
the notebooks and the tests).

May import: ``rfm_engine.campaigns`` (the default plan the sample is shaped for),
``rfm_engine.io`` and the bottom modules.
"""
