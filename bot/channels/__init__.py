"""Channels gateway: the web chat page, the Slack app and the staff console, in front of Rasa.

Customers reach the bot only through this gateway (``python -m bot.channels serve``). It keeps
each conversation's transcript, relays messages to Rasa's REST channel, and, while a person
handles a conversation, keeps the bot paused and carries messages between customer and agent.
"""
