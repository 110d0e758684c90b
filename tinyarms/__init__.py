"""tinyarms: a local code reviewer that lints with deterministic rules and small local models."""

__version__ = "0.1.0"
