"""mopsbot: a Marketing-Operations copilot that lives in Slack."""

__version__ = "0.1.0"
