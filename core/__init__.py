"""Shared foundation: settings, database engine and tables, process launcher."""
