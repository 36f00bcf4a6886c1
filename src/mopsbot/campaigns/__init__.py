"""Campaign configs: the typed config, the team's policy, the linter, drafts and approved versions."""
