"""Model loading: hub ids, local paths and the locally built tiny models, through one from_pretrained path."""
