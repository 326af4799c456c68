"""Frozen-feature classification transfer: datasets, cached features, SVMs, linear heads, kNN, and the tasks."""
