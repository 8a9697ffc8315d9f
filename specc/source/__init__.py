"""specc.source."""
