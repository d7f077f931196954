"""`python -m pipeline STAGE ...`: the same command as `neurosurrogate STAGE ...`."""

from pipeline.cli import main

raise SystemExit(main())
