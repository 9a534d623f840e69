"""Modbus TCP: plan.py (which requests), decode.py (registers -> values), driver.py (I/O)."""
