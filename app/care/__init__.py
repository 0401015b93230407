"""Proactive care (主动服务): rules that speak to a buyer first, once per order."""
