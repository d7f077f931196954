"""NEURON cells, their mechanisms, the input protocol, and the one entry point that
simulates them."""

import os

# No GUI: NEURON otherwise warns about a missing DISPLAY on every import (clusters, CI).
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
