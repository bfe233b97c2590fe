"""The pe-lb policy pack (rules in policy.rules; the pack itself in policy/__main__.py)."""
