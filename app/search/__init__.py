"""Search over message text: Chinese substrings, indexed on both databases."""
