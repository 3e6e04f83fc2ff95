"""Signals other apps listen to (jobs import none of them)."""

from django.dispatch import Signal

# Sent once a job has reached a terminal status and that change is committed; kwargs: job.
# Receivers must tolerate a second call for the same job (a reconciling sweep may repeat it).
job_finished = Signal()
