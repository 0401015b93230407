"""Orders as the storefront server reports them; the buyer panel and payouts read them."""
