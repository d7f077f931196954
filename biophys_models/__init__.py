"""NEURON cells, their mechanisms, and the one entry point that simulates them."""
