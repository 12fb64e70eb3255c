"""Model governance: forecast explanations, the fairness audit and online/offline skew."""
