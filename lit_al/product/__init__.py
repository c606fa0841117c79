"""What a run hands over: the exported Hugging Face model, predictions on new texts, and where the run stands."""
