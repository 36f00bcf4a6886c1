"""One turn: messages -> backend -> tool calls -> answer. Backends: `openai` (any compatible LLM) and `local`."""
