"""The "1+1" handover from sales to after-sales, and the first-use feedback that follows the delivery."""

from __future__ import annotations

from pydantic import Field

from chalicelib.events.common import Day, EventData, Id, Label, Part, Text, Vin


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
