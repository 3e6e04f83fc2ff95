"""Signals other apps listen to (nodes import no other app)."""

from django.dispatch import Signal

# Sent after a node registers and after each of its heartbeats: capacity may have appeared.
# The jobs app places queued jobs on it (so placement never waits for the minute-long schedule).
node_alive = Signal()
