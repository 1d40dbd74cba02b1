"""RFM itself: orders, customer features, scores, segments, clusters and the model.

``orders`` (the orders table and the one purchase rule), ``features`` (recency,
frequency, monetary and the CLV summary), ``scoring`` (the R, F, M bins), ``segments``
(rule sets, their lint and the built-in TOML files), ``pipeline`` (score then segment),
``clustering`` (optional k-means beside the rules) and ``model`` (the scikit-learn
``SegmentationModel`` that freezes scorer, rules and clusterer). ``_estimator`` gives the
engine's estimators scikit-learn's conventions without importing scikit-learn (only
``clustering`` imports it at start: k-means is scikit-learn's).

May import: ``rfm_engine.io`` and the bottom modules (``errors``, ``config``, ``progress``,
``plotting``); never campaigns, measurement, reports, runs or integrations.
"""
