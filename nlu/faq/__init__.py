"""FAQ answers by retrieval: knowledge-base files, import into the database, hybrid search, confidence policy.

``python -m nlu.faq import bot/kb/faq.yml`` loads a knowledge base; ``python -m nlu.faq search "text"``
shows what the bot would answer.
"""
