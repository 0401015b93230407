"""Shops, their agents and buyers, and the identities that act for them."""
