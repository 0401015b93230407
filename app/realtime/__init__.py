"""Real-time delivery: connection registry per process and the bus between processes."""
