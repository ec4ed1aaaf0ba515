"""The built-in checkpoints: weights (safetensors) and their cards, which `rbl train` regenerates."""
