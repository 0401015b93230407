"""High-intent promo recall (issue 5); nothing is built here yet."""
