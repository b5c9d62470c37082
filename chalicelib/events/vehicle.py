"""Vehicle events from dealers: delivery, the "1+1" handover, first-use feedback, odometer, service."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.events.common import EventData, Id, Instant, Km, Phone, Score, Text, Vin


class Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class Customer(Part):
    """The buyer: who CLM reminds, in which language and over which channel."""

    id: Id
    name: Id
    phone: Phone
    locale: Literal["zh-CN", "en"] = "zh-CN"
    preferred_channel: Literal["sms", "phone", "wechat"] = "sms"
    birthday: date | None = None


class Staff(Part):
    """A dealer employee responsible for this customer."""

    id: Id
    name: str | None = Field(default=None, max_length=128)
    phone: Phone | None = None


class FirstService(Part):
    """When the first service falls due: months after delivery or kilometres, whichever first."""

    due_months: int = Field(default=3, ge=1, le=60)
    due_km: Km = 5000


class MaintenancePlan(Part):
    """The regular maintenance interval after the first service."""

    interval_months: int = Field(default=12, ge=1, le=60)
    interval_km: Km = 10000


class VehicleDelivered(EventData):
    """A car handed to its customer: the start of the lifecycle and of the handover clock."""

    vin: Vin
    model: Id
    powertrain: Literal["ice", "hybrid", "ev"]
    packages: list[Id] = Field(default_factory=list, max_length=50)
    delivered_at: Instant
    customer: Customer
    sales_advisor: Staff
    service_specialist: Staff
    first_service: FirstService = Field(default_factory=FirstService)
    maintenance_plan: MaintenancePlan = Field(default_factory=MaintenancePlan)
    loan_id: Id | None = None


class FormBasic(Part):
    customer_name: Id
    model: Id
    purchase_date: date
    key_config: list[Id] = Field(default_factory=list, max_length=50)


class FormNeeds(Part):
    core_need: Text
    concerns: list[Text] = Field(default_factory=list, max_length=50)


class FormPreferences(Part):
    channel: Id
    activities: list[Text] = Field(default_factory=list, max_length=50)


class HandoverForm(Part):
    """What the advisor learned about the customer, handed to after-sales."""

    basic: FormBasic
    needs: FormNeeds
    preferences: FormPreferences


class HandoverSubmitted(EventData):
    """The advisor filed the handover form (the first "1" of "1+1")."""

    vin: Vin
    submitted_by: Id
    form: HandoverForm


class HandoverConfirmed(EventData):
    """The specialist confirmed the form; `corrections` name the fields found wrong (accuracy KPI)."""

    vin: Vin
    confirmed_by: Id
    corrections: list[Id] = Field(default_factory=list, max_length=50)


class DeliveryFeedbackSubmitted(EventData):
    """The specialist's first-use feedback to the advisor (due within 3 days of delivery)."""

    vin: Vin
    submitted_by: Id
    questions: list[Text] = Field(default_factory=list, max_length=50)
    needs: list[Text] = Field(default_factory=list, max_length=50)


class OdometerReported(EventData):
    """A mileage reading; drives mileage-based service reminders."""

    vin: Vin
    odometer_km: Km
    read_at: Instant
    source: Literal["telematics", "service", "customer"]


class ServiceCompleted(EventData):
    """A workshop visit finished; a first service or maintenance resets the next-service clock."""

    vin: Vin
    repair_order_id: Id
    kind: Literal["first_service", "maintenance", "repair"]
    odometer_km: Km
    completed_at: Instant
    items: list[Text] = Field(default_factory=list, max_length=200)


class SurveyCompleted(EventData):
    """A customer's joint sales/after-sales satisfaction score (KPI: at least 90)."""

    vin: Vin
    kind: Literal["joint_service"]
    score: Score
    at: Instant
