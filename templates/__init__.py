"""Jinja2 templates of the generated code, one per output file (shipped as specc.templates)."""
