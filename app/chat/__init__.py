"""Chat core: conversations, messages with gap-free sequence numbers, and the socket protocol."""
