"""Fan groups (issue 6); nothing is built here yet."""
