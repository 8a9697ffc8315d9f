"""The spec language as Pydantic models: what a spec file may say."""
