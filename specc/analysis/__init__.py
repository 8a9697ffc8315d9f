"""specc.analysis."""
