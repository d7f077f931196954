"""The pipeline: one command per stage (stages/), the libraries they share (datasets/,
acquisition/, training/, evaluation/, reporting/, sweep/, runtime/, config/) and the CLI."""
