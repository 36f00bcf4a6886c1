"""The evals runner: labelled cases through the agent on any backend, scored, with a scorecard and a diff."""
