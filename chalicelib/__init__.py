"""CLM: the customer-lifecycle hub (Chalice application package)."""
