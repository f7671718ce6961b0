"""Tasks: one module per kind of problem, each plugged into `medfast.learner`."""
