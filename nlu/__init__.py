"""Our NLU: a fine-tuned BERT encoder with intent and sentiment heads, served in Rasa's contract."""
