"""The Rasa project (domain, data, config) and its action server package."""
