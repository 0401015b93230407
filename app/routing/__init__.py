"""Routing: which queue a conversation joins and which agent gets it."""
