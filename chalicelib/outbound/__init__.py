"""Everything CLM says to the outside world goes through the outbox, then out of here."""
