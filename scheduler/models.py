"""The scheduler's tables (outbox deliveries, alerts, job runs), defined in storage so the schema lives in one layer."""

from storage.scheduler_models import (
    ALERT_STATUSES,
    DELIVERY_STATUSES,
    Alert,
    Delivery,
    JobRun,
    utcnow,
)

__all__ = ["ALERT_STATUSES", "DELIVERY_STATUSES", "Alert", "Delivery", "JobRun", "utcnow"]
