"""A delivered vehicle's life: mileage, service, insurance, the customer's survey."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.events.common import Day, EventData, Id, Instant, Km, Label, Score, Vin


class OdometerReported(EventData):
    """A mileage reading: drives mileage-based service reminders."""

    vin: Vin
    odometer_km: Km
    read_at: Instant
    source: Literal["telematics", "service", "customer"]


class ServiceCompleted(EventData):
    """A workshop visit finished; a first service or maintenance restarts the next-service clock."""

    vin: Vin
    repair_order_id: Id
    kind: Literal["first_service", "maintenance", "repair"]
    odometer_km: Km
    completed_at: Instant
    items: list[Label] = Field(max_length=200)


class InsurancePolicyUpdated(EventData):
    """The vehicle's current insurance policy (renewal reminders 30 and 7 days before it expires)."""

    vin: Vin
    insurer: Label
    policy_no: Id
    expires_on: Day


class SurveyCompleted(EventData):
    """The customer's joint sales/after-sales satisfaction score (KPI target: at least 90)."""

    vin: Vin
    kind: Literal["joint_service"]
    score: Score
    at: Instant
