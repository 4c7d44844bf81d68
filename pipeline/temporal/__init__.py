"""Temporal smoothing of predicted alpha; ``modes`` names the modes without importing torch."""
