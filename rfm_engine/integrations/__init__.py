"""Optional integrations: MLflow tracking and registry, and the frozen-model store.

``tracking`` (MLflow runs, metrics, artifacts, registry promotion: the only module that
imports ``mlflow``) and ``model_store`` (skops model files checked against the sha256 of
``manifest.json``; class paths saved by older layouts are mapped on load).

May import: every layer below it and ``runs`` (same layer); only ``rfm_engine.cli``
imports ``tracking``. No module outside this subpackage imports ``mlflow`` (import
contract in ``pyproject.toml``).
"""
