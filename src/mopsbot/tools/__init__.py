"""The tools the agent can call: one module per family; each tool is a typed function with a docstring."""
