"""The scheduler's tables (outbox deliveries, alerts, job runs), defined in storage so the schema lives in one layer."""

from storage.scheduler_models import (
    ALERT_STATUSES,
    ATTEMPT_IN_FLIGHT,
    ATTEMPT_UNKNOWN,
    DELIVERY_STATUSES,
    Alert,
    Delivery,
    DeliveryGate,
    DeliveryPause,
    DeliverySlot,
    JobRun,
    utcnow,
)

__all__ = [
    "ALERT_STATUSES",
    "ATTEMPT_IN_FLIGHT",
    "ATTEMPT_UNKNOWN",
    "DELIVERY_STATUSES",
    "Alert",
    "Delivery",
    "DeliveryGate",
    "DeliveryPause",
    "DeliverySlot",
    "JobRun",
    "utcnow",
]
