"""rfm-engine: transactions to RFM segments, campaign target lists and CRM KPIs."""

__version__ = "0.1.0"
