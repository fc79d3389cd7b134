"""Off-policy evaluation, RCT analysis, fairness audit and reports."""
