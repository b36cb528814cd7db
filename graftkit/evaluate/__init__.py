"""Metrics, reports and plots for a run."""
