"""Use cases: one function per thing a handler asks for. Handlers stay thin."""
