"""The daemon: one long-running process per user that owns config, skills, cache and models."""
