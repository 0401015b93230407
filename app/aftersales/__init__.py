"""After-sales requests in the chat (售后): refunds, returns, exchanges, 坏了包退, 价保."""
