"""Inbound verification: who sent a request, and whether it is really theirs."""
