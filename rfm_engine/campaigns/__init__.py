"""From segments to target lists: what is sent to whom, and who must not get it.

``plan`` (the campaigns and the default plan), ``assign`` (who joins which campaign:
suppression, exclusions, holdouts, caps, spacing, counts), ``suggestions`` (cross-sell and
up-sell from what customers of the same segment bought, in DuckDB), ``suppression``
(suppression lists and the check that none of them reaches an export), ``consent``
(express/implied consent and objections), ``exports`` (the ESP layouts: generic, Mailchimp,
Klaviyo, HubSpot, Braze).

May import: ``rfm_engine.core``, ``rfm_engine.io`` and the bottom modules; not
``measurement`` (an independent sibling), nor anything above.
"""
