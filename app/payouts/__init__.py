"""Limited direct-payout authority: compensation within limits, approvals, the fund, the ledger."""
