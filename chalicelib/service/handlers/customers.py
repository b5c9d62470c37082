"""The sending dealer's own customers: created on first mention, preferences kept."""

from __future__ import annotations

from typing import Any

from chalicelib.events.care import PREFERENCE_FIELDS, CustomerPreferencesUpdated
from chalicelib.events.sales import NegotiationRecorded, TestDriveCompleted
from chalicelib.service import profiles, reminders
from chalicelib.service.handlers import Context, Effects, handles
from chalicelib.service.ownership import Target
from chalicelib.store import records


@handles(TestDriveCompleted, NegotiationRecorded)
def on_sales_floor(ctx: Context, data: Any, target: Target, effects: Effects) -> None:
    """The dealer's customer of that id exists from its first mention on (its contact comes with
    the delivery); what the test drive or negotiation says goes to the customer's tags."""
    if target.dealer_id is None:
        return
    records.update_customer(target.dealer_id, data.customer_id, {}, ctx.now)
    if isinstance(data, TestDriveCompleted):
        effects.puts.append(profiles.test_drive(target.dealer_id, data))
    else:
        effects.puts.append(profiles.negotiation(target.dealer_id, data))


@handles(CustomerPreferencesUpdated)
def on_preferences(ctx: Context, data: CustomerPreferencesUpdated, target: Target, effects: Effects) -> None:
    """What the customer changed; absent fields stay as they were."""
    if target.dealer_id is None:
        return
    changes = {name: getattr(data, name) for name in PREFERENCE_FIELDS}
    if data.birthday is not None:
        changes["birthday"] = data.birthday.isoformat()
        effects.puts.append(
            reminders.birthday_reminder(target.dealer_id, data.customer_id, data.birthday, ctx.now)
        )
    records.update_customer(target.dealer_id, data.customer_id, changes, ctx.now)
