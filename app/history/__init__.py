"""The buyer's history: their earlier conversations with the shop, read-only, for the staff."""
