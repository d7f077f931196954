"""PyTorch surrogate models of the L5PC (ELM, Branch-ELM, TCN, LSTM)."""
