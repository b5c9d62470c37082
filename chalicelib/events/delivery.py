"""The delivery: a car handed to its customer, with the people and plans that come with it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.events.common import Channel, Day, EventData, Id, Instant, Label, Locale, Part, Phone, Vin

Months = Annotated[int, Field(strict=True, ge=1, le=120)]
IntervalKm = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]


class Customer(Part):
    """The buyer: who CLM reminds, in which language and over which channel."""

    id: Id
    name: Label
    phone: Phone
    locale: Locale = "zh-CN"
    preferred_channel: Channel
    birthday: Day | None = None


class Staff(Part):
    """A dealer employee who owns this customer's tasks on one side (sales or after-sales)."""

    id: Id
    name: Label | None = None
    phone: Phone | None = None


class FirstService(Part):
    """When the first service falls due: months after delivery or kilometres, whichever comes first."""

    due_months: Months = 3
    due_km: IntervalKm = 5000


class MaintenancePlan(Part):
    """The regular maintenance interval that follows the first service."""

    interval_months: Months = 12
    interval_km: IntervalKm = 10000


class VehicleDelivered(EventData):
    """A car handed to its customer: the lifecycle starts, and with it the handover and feedback clocks."""

    vin: Vin
    model: Label
    powertrain: Literal["ice", "hybrid", "ev"]
    packages: list[Label] = Field(max_length=50)
    delivered_at: Instant
    customer: Customer
    sales_advisor: Staff
    service_specialist: Staff
    first_service: FirstService = Field(default_factory=FirstService)
    maintenance_plan: MaintenancePlan = Field(default_factory=MaintenancePlan)
    loan_id: Id | None = None
