"""Limited direct-payout authority: compensation within limits, approvals, the fund, the ledger.

Modules, lowest first (each imports only those above it): `rules` (pure), `service`
(reads), `ledger` (the append-only ledger, refusals, payout news), `authority` (the acting
agent, daily totals), `fund` (top-ups, and paying a payout out of the fund and the order),
`requests` (an agent asks to pay), `approvals` (a supervisor decides), `coupons`
(late-shipment coupons), `jobs`, `api`. Cards to the buyer go through `app.chat.notices`.
"""
