"""What an operator watches: Prometheus metrics (`/metrics`) and log lines (text or JSON)."""
