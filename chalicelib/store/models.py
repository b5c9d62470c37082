"""The single DynamoDB table and every item type in it. Only `chalicelib.store` imports this.

Layout (pk / sk):
    PARTNER#<id>              PARTNER                 partner: kind, encrypted webhook secrets
    APIKEY#<sha256>           APIKEY                  API key hash -> partner
    INBOX#<partner>#<wh-id>   INBOX                   accepted webhook: body, hash, status (dedup, TTL)
    CUST#<dealer>#<id>        CUSTOMER                customer profile and contact (ids are per dealer)
    VEH#<vin>                 VEHICLE                 vehicle: delivery, staff, plans, odometer, handover
    VEH#<vin>                 ODO#<read_at>#<source>  odometer reading
    VEH#<vin>                 SVC#<at>#<order>        service record
    VEH#|CUST#|PARTNER#...    T#<at>#<wh-id>          timeline entry (one per event)
    DEALER#<id>               TASK#<task id>          staff task
    OUTBOX#<id>               OUTBOX                  notification to deliver
    IDEMPOTENCY#...           ...                     Powertools idempotency records

GSI ``gsi1`` is sparse: only items waiting for time to pass carry ``gsi1pk``/``gsi1sk``
(open tasks by due time, undelivered outbox items, unprocessed inbox items); the sweeper
queries it and the claim that handles an item removes its keys.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

GSI1 = "gsi1"


class DueIndex(GlobalSecondaryIndex["Item"]):
    """Items waiting for an instant: partition = queue name (sharded), sort = ISO instant."""

    class Meta:
        index_name = GSI1
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Item(Model):
    """Base of every item; `Meta.table_name` and `host` are bound at run time by `store.bind()`."""

    class Meta:
        table_name = "clm-unbound"
        region = "cn-north-1"
        host: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entity = DiscriminatorAttribute(attr_name="et")
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    due_index = DueIndex()


class SecretEntry(MapAttribute[str, Any]):
    ciphertext = UnicodeAttribute()  # base64 KMS ciphertext bound to the partner id
    created_at = UTCDateTimeAttribute()
    retires_at = UTCDateTimeAttribute(null=True)


class PartnerItem(Item, discriminator="partner"):
    partner_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    secrets = ListAttribute(of=SecretEntry, default=list)
    created_at = UTCDateTimeAttribute()
    version = VersionAttribute()


class ApiKeyItem(Item, discriminator="api_key"):
    partner_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class InboxItem(Item, discriminator="inbox"):
    partner_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    body_sha256 = UnicodeAttribute()
    body = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # accepted | processed
    processed_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)


class Person(MapAttribute[str, Any]):
    id = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)


class CustomerItem(Item, discriminator="customer"):
    customer_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    phone = UnicodeAttribute()
    locale = UnicodeAttribute(default="zh-CN")
    preferred_channel = UnicodeAttribute(default="sms")
    birthday = UnicodeAttribute(null=True)
    sms_opt_out = BooleanAttribute(default=False)
    updated_at = UTCDateTimeAttribute()


class VehicleItem(Item, discriminator="vehicle"):
    vin = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    model = UnicodeAttribute()
    powertrain = UnicodeAttribute()
    packages = ListAttribute(of=UnicodeAttribute, default=list)
    delivered_at = UTCDateTimeAttribute()
    customer_id = UnicodeAttribute()
    sales_advisor = Person()
    service_specialist = Person()
    plan = JSONAttribute()  # {"first_service": {...}, "maintenance_plan": {...}}
    loan_id = UnicodeAttribute(null=True)
    odometer_km = NumberAttribute(null=True)
    odometer_read_at = UTCDateTimeAttribute(null=True)
    handover = JSONAttribute(null=True)
    handover_confirmation = JSONAttribute(null=True)
    delivery_feedback = JSONAttribute(null=True)
    last_service = JSONAttribute(null=True)


class OdometerItem(Item, discriminator="odometer"):
    odometer_km = NumberAttribute()
    read_at = UTCDateTimeAttribute()
    source = UnicodeAttribute()
    applied = BooleanAttribute()  # False when older than the latest known reading


class ServiceItem(Item, discriminator="service"):
    repair_order_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    odometer_km = NumberAttribute()
    completed_at = UTCDateTimeAttribute()
    items = ListAttribute(of=UnicodeAttribute, default=list)
    dealer_id = UnicodeAttribute()


class TimelineItem(Item, discriminator="timeline"):
    event_type = UnicodeAttribute()
    occurred_at = UTCDateTimeAttribute()
    partner_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute(null=True)
    summary = JSONAttribute()


class TaskItem(Item, discriminator="task"):
    task_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    assignee_id = UnicodeAttribute()
    assignee_role = UnicodeAttribute()
    vin = UnicodeAttribute(null=True)
    ref = UnicodeAttribute(null=True)
    due_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # open | overdue | done
    created_at = UTCDateTimeAttribute()
    closed_at = UTCDateTimeAttribute(null=True)
    closed_by = UnicodeAttribute(null=True)
    breached = BooleanAttribute(default=False)


class OutboxItem(Item, discriminator="outbox"):
    outbox_id = UnicodeAttribute()
    channel = UnicodeAttribute()  # topic | sms
    target = UnicodeAttribute()  # topic key (staff_tasks, ops, red_alerts) or E.164 number
    message = UnicodeAttribute()  # JSON body or SMS text
    attributes = JSONAttribute(default=dict)  # SNS message attributes {name: str | list[str]}
    status = UnicodeAttribute()  # pending | delivered
    created_at = UTCDateTimeAttribute()
    delivered_at = UTCDateTimeAttribute(null=True)
    source = UnicodeAttribute(null=True)  # what caused it (event or sweep), for tracing


ALL_MODELS: tuple[type[Item], ...] = (
    Item,
    PartnerItem,
    ApiKeyItem,
    InboxItem,
    CustomerItem,
    VehicleItem,
    OdometerItem,
    ServiceItem,
    TimelineItem,
    TaskItem,
    OutboxItem,
)
