"""Fine-tuning: staleness-aware replay, the GIPO loop, learning-curve plots."""
