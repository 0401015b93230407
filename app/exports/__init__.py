"""CSV exports of a shop's conversations, messages, daily metrics and payout ledger."""
