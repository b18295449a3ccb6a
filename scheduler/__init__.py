"""Scheduled work: APScheduler 3.x jobs, the delivery outbox, its dispatcher and the leader lock."""
