"""Making the raw data set: simulating a cell (`simulate`) or converting the published
NeuronIO files (`ingest`). The `simulate`, `ingest` and `acquire` stages all call these."""
