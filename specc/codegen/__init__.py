"""specc.codegen."""
