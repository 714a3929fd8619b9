"""Generation jobs: systems whose responses are produced by a model instead of uploaded."""
