"""Homing: a customer-service IM workbench for e-commerce shops."""
