"""Rules that judge specs and models: cross-spec validation and activation."""
