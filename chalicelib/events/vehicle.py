"""Vehicle events from dealers: delivery, the "1+1" handover, first-use feedback, mileage, service, survey."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.events.common import (
    Channel,
    Day,
    EventData,
    Id,
    Instant,
    Km,
    Label,
    Locale,
    Part,
    Phone,
    Score,
    Text,
    Vin,
)

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


class FormBasic(Part):
    """The facts of the sale as the advisor recorded them."""

    customer_name: Label
    model: Label
    purchase_date: Day
    key_config: list[Label] = Field(max_length=50)


class FormNeeds(Part):
    """Why the customer bought and what worries them: what after-sales should know."""

    core_need: Text
    concerns: list[Text] = Field(max_length=50)


class FormPreferences(Part):
    """How the customer wants to be contacted and which activities interest them."""

    channel: Label
    activities: list[Label] = Field(max_length=50)


class HandoverForm(Part):
    """What the advisor learned about the customer, handed over to after-sales."""

    basic: FormBasic
    needs: FormNeeds
    preferences: FormPreferences


class HandoverSubmitted(EventData):
    """The advisor filed the handover form (the first "1" of "1+1", due within 24 h of delivery)."""

    vin: Vin
    submitted_by: Id
    form: HandoverForm


class HandoverConfirmed(EventData):
    """The specialist checked the form; `corrections` name the fields found wrong (handover-accuracy KPI)."""

    vin: Vin
    confirmed_by: Id
    corrections: list[Label] = Field(max_length=50)


class DeliveryFeedbackSubmitted(EventData):
    """The specialist's first-use feedback to the advisor (due within 3 days of delivery)."""

    vin: Vin
    submitted_by: Id
    questions: list[Text] = Field(max_length=50)
    needs: list[Text] = Field(max_length=50)


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
