"""Test-wide settings: Keras runs on the torch backend (a CPU build) unless told otherwise;
set before anything imports keras, and inherited by every process a test starts."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
