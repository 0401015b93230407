"""Service metrics (体验分): reply rates, first response, satisfaction, handled, payouts."""
