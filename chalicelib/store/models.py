"""The single DynamoDB table and every item type in it. Only `chalicelib.store` imports this.

Layout (pk / sk):
    PARTNER#<id>              PARTNER                 partner: kind, encrypted webhook secrets
    APIKEY#<sha256>           APIKEY                  API key hash -> partner
    INBOX#<partner>#<wh-id>   INBOX                   accepted webhook: body, hash, outcome (dedup, TTL)
    CUST#<dealer>#<id>        CUSTOMER                customer profile and contact (ids are per dealer)
    VIN#<vin>                 OWNER                   whose vehicle it is now: dealer, delivery, the
                                                      latest accepted odometer reading
    VEH#<dealer>#<vin>        VEHICLE                 that dealer's vehicle: delivery, staff, plans,
                                                      odometer, handover; `transferred_at` once resold
    VEH#<dealer>#<vin>        TASKREF#<task id>       the dealer's task about this vehicle (transfers
                                                      cancel them)
    VEH#<dealer>#<vin>        WAIT#<wh-id>            the dealer's event waiting for its delivery
    VEH#|CUST#|LOAN#|...      T#<at>#<partner>#<id>   timeline entry (one per event and owner); on a
                                                      vehicle it carries the event's odometer reading
                                                      and service record too
    VEH#<dealer>#<vin>        REMINDER#<id>           a customer reminder about the vehicle (service
                                                      due, insurance renewal): when, and what became of it
    CUST#<dealer>#<id>        REMINDER#<id>           a reminder about the customer (birthday greeting)
    CUST#<dealer>#<id>        SIGNAL#<kind>#<key>     what an event said that preference tags read
    TAGS#<dealer>             <tag>#<customer id>     whether the customer carries the tag (counts)
    DEALER#<id>               TASK#<task id>          staff task
    DEALER#<id>               RISK#<audited at>       an audit's risk signal
    DEALER#<id>               KPIRUN#<week>           the weekly KPI job ran for that week
    DEALER#<id>               STAFF#<role>#<id>       a staff member events named (incentives list them)
    DEALER#<id>               LOAN#<finance>#<loan>   a loan of the dealer's customer: schedule, paid
    LOAN#<finance>#<loan>     LOAN                    the loan's dealer (+ its timeline, its reminders)
    PAYREF#<payment ref>      PAYREF                  the installment a gateway's order number pays
    GATEWAY#<name>            CONFIG                  a payment gateway's merchant id and keys
    PAYMENT#<gateway>#<txid>  PAYMENT                 a gateway transaction (dedup) and its outcome
    PAYWAIT                   <ref>#<gateway>#<txid>  a payment for an order number no loan has yet
    COMPLAINT#<dealer>#<id>   COMPLAINT               complaint: text, triage, steps (+ its timeline)
    LEAD#<dealer>#<id>        LEAD                    service lead: push, follow-ups (+ its timeline)
    FEEDBACK#<dealer>#<id>    FEEDBACK                dealer feedback to HQ: its two clocks
    FEEDBACKID#<id>           DEALER#<dealer>|REPLY#… who opened feedback of that id; early replies
    FACT#<dealer>             <kind>#<subject>        what the weekly KPIs and monthly incentives count
                                                      (in lsi1 by the instant it counts at)
    OUTBOX#<id>               OUTBOX                  notification to deliver
    IDEMPOTENCY#...           ...                     Powertools idempotency records

Every record a dealer's event creates sits under a key that names that dealer (`VEH#<dealer>#…`,
`CUST#<dealer>#…`, `DEALER#<dealer>`): a read for one dealer cannot reach another's data, and a
resold car starts a new partition for its new dealer. Only `VIN#<vin>` is shared, and no read
API shows it.

LSI ``lsi1`` orders a partition by ``lsi1sk``; only tasks (``<due_at UTC>#<task id>``: a dealer's
task list reads in due order, page by page) and KPI facts (``<counts_at UTC>#<kind>#<subject>``: a
week is one range) carry it.

GSI ``gsi1`` is sparse: only items waiting for time to pass carry ``gsi1pk``/``gsi1sk``
(open tasks by due time, reminders by trigger time, undelivered outbox items, SMS waiting for
their send time, unprocessed or waiting inbox items, gateway transactions not yet applied); the
sweeper queries it and the claim that handles an item removes its keys. One more partition,
``PARTNERS``, lists every partner by id (`clm partner list`); nothing sweeps it.
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
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib import envelope

GSI1 = "gsi1"
LSI1 = "lsi1"


class SealedAttribute(UnicodeAttribute):
    """Personal data (a name, a phone number, free text, a raw payload): encrypted at rest with
    `chalicelib.envelope`, plaintext once read. Never a key or in a condition: each write differs."""

    def serialize(self, value: Any) -> str:
        return envelope.seal(value)

    def deserialize(self, value: Any) -> str:
        return envelope.open_sealed(value)


class SealedJSONAttribute(JSONAttribute):
    """A JSON document that may hold personal data in free text (a form, a timeline summary):
    sealed as a whole, like `SealedAttribute`."""

    def serialize(self, value: Any) -> Any:
        plain = super().serialize(value)
        return None if plain is None else envelope.seal(plain)

    def deserialize(self, value: Any) -> Any:
        return super().deserialize(envelope.open_sealed(value))


class DueIndex(GlobalSecondaryIndex["Item"]):
    """Items waiting for an instant: partition = queue name (sharded), sort = ISO instant."""

    class Meta:
        index_name = GSI1
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DueOrderIndex(LocalSecondaryIndex["Item"]):
    """A partition's items in due order: a dealer's tasks by `due_at`, then id (the task list)."""

    class Meta:
        index_name = LSI1
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    lsi1sk = UnicodeAttribute(range_key=True)


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
    lsi1sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    due_index = DueIndex()
    due_order = DueOrderIndex()


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
    body = SealedAttribute()  # the raw payload, as signed
    received_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # pending | applied | ignored | dead_lettered (the outcome, §3)
    reason = UnicodeAttribute(null=True)  # what the sender may see: awaiting_delivery, unknown_vehicle, ...
    ops_reason = UnicodeAttribute(null=True)  # the true reason, for ops only (foreign_vehicle)
    processed_at = UTCDateTimeAttribute(null=True)  # when the outcome became final
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)
    waiting_for = UnicodeAttribute(null=True)  # "<dealer>#<vin>" while parked for a delivery


class Person(MapAttribute[str, Any]):
    id = UnicodeAttribute()
    name = SealedAttribute(null=True)
    phone = SealedAttribute(null=True)


class CustomerItem(Item, discriminator="customer"):
    customer_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    name = SealedAttribute(null=True)  # null for a customer first mentioned by a complaint or lead
    phone = SealedAttribute(null=True)
    locale = UnicodeAttribute(default="zh-CN")
    preferred_channel = UnicodeAttribute(default="sms")
    birthday = UnicodeAttribute(null=True)
    sms_opt_out = BooleanAttribute(default=False)
    care_opt_out = BooleanAttribute(default=False)
    past_due_loans = UnicodeSetAttribute(null=True)  # "<finance>#<loan>" of its loans 30+ days past due
    updated_at = UTCDateTimeAttribute()
    tags = JSONAttribute(null=True)  # {tag: {since, evidence}}: the preference tags it carries now
    tag_history = JSONAttribute(null=True)  # [{tag, change: added|dropped, at}], oldest first
    tags_rev = NumberAttribute(null=True)  # counts the saves of `tags`: each save expects the one it read


class TagSignalItem(Item, discriminator="tag_signal"):
    """Under the customer (sk `SIGNAL#<kind>#<ref>#<at>`): one thing the dealer's events said that
    the preference tags read (a test drive, a negotiation, a vehicle's packages, its handover form,
    a service). Of the signals of one kind and ref, the latest counts."""

    kind = UnicodeAttribute()  # drive | deal | vehicle | handover | service
    ref = UnicodeAttribute(null=True)  # what it is about: a model, a VIN, a VIN's repair order
    at = UTCDateTimeAttribute()  # when it happened
    data = JSONAttribute(default=dict)


class TagMemberItem(Item, discriminator="tag_member"):
    """Under `TAGS#<dealer>` (sk `<tag>#<customer id>`): whether the customer carries the tag, saved
    in one transaction with the customer's tags. The dealer's tag counts read this partition."""

    tag = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    carried = BooleanAttribute()


class VehicleOwnerItem(Item, discriminator="vehicle_owner"):
    """Whose vehicle a VIN is now. Deliveries claim it conditionally; odometer checks read it on accept."""

    vin = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    delivered_at = UTCDateTimeAttribute()
    tenures = JSONAttribute(default=dict)  # {dealer id: ISO time of its latest delivery claimed}
    accepted_km = NumberAttribute(null=True)  # latest accepted reading of this tenure (applied or not)
    accepted_read_at = UTCDateTimeAttribute(null=True)


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
    handover = SealedJSONAttribute(null=True)  # the form as filed: the customer's name, their needs
    handover_confirmation = SealedJSONAttribute(null=True)
    delivery_feedback = SealedJSONAttribute(null=True)
    last_service = JSONAttribute(null=True)
    insurance = JSONAttribute(null=True)
    next_service = JSONAttribute(null=True)  # the current service cycle: due date and km, its reminder
    service_reminder_fired = UnicodeAttribute(null=True)  # id of the cycle reminder that went out
    reminded_at = UTCDateTimeAttribute(null=True)  # when the latest reminder about it fired
    transferred_at = UTCDateTimeAttribute(null=True)  # another dealer's later delivery took it over
    red_complaints = UnicodeSetAttribute(null=True)  # ids of its open red-alert complaints (holds)


class TaskRefItem(Item, discriminator="task_ref"):
    """A dealer's task about one of its vehicles, under the vehicle: a transfer finds them in one query."""

    task_id = UnicodeAttribute()
    delivered_at = UTCDateTimeAttribute()  # the delivery (tenure) the task belongs to


class WaitItem(Item, discriminator="wait"):
    """An accepted event of this dealer about this VIN, waiting for the dealer's delivery of it."""

    partner_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()


class TimelineItem(Item, discriminator="timeline"):
    event_type = UnicodeAttribute()
    occurred_at = UTCDateTimeAttribute()
    partner_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute(null=True)
    summary = SealedJSONAttribute()  # the event without names and phones, but with its free text
    reading = JSONAttribute(null=True)  # {km, read_at, source}: readings and services
    service = JSONAttribute(null=True)  # {repair_order_id, kind, odometer_km, completed_at, items}


class TaskItem(Item, discriminator="task"):
    task_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    assignee_id = UnicodeAttribute(null=True)  # null: the role's, not yet assigned to one person
    assignee_role = UnicodeAttribute()
    vin = UnicodeAttribute(null=True)
    ref = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)  # what the kind adds: who else is involved, a lead's grade, a clock
    due_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # open | overdue | done | cancelled
    created_at = UTCDateTimeAttribute()
    closed_at = UTCDateTimeAttribute(null=True)
    closed_by = UnicodeAttribute(null=True)
    closed_reason = UnicodeAttribute(null=True)  # why a task was cancelled (superseded)
    breached = BooleanAttribute(default=False)


class ComplaintItem(Item, discriminator="complaint"):
    """A dealer's complaint: what the customer said, its triage, and each step towards a solution.

    Steps may arrive before the complaint itself: each event sets only its own fields."""

    complaint_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    customer_id = UnicodeAttribute(null=True)
    vin = UnicodeAttribute(null=True)  # as given by the sender
    linked_vin = UnicodeAttribute(null=True)  # set only when it is the sender's own current vehicle
    channel = UnicodeAttribute(null=True)
    text = SealedAttribute(null=True)  # what the customer said: may hold names and numbers
    opened_at = UTCDateTimeAttribute(null=True)
    severity = UnicodeAttribute(null=True)  # red | amber | normal
    matched = JSONAttribute(null=True)  # the rules that fired
    near_misses = JSONAttribute(null=True)  # rules whose words occur, not as a phrase (for tuning)
    alert_id = UnicodeAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    acknowledged_at = UTCDateTimeAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    solution_at = UTCDateTimeAttribute(null=True)
    solution_by = UnicodeAttribute(null=True)
    resolved_at = UTCDateTimeAttribute(null=True)
    resolved_by = UnicodeAttribute(null=True)
    satisfaction = NumberAttribute(null=True)
    satisfaction_at = UTCDateTimeAttribute(null=True)  # of the latest resolution that gave one
    rev = NumberAttribute(default=0)  # +1 on every change: the facts mirroring it keep the newest
    updated_at = UTCDateTimeAttribute()


class LeadItem(Item, discriminator="lead"):
    """A service lead for sales: when it was captured and pushed, and how the advisor followed it up."""

    lead_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    customer_id = UnicodeAttribute(null=True)
    vin = UnicodeAttribute(null=True)
    linked_vin = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    grade = UnicodeAttribute(null=True)
    captured_by = UnicodeAttribute(null=True)
    captured_at = UTCDateTimeAttribute(null=True)
    pushed_at = UTCDateTimeAttribute(null=True)  # when CLM opened the advisor's task (push latency)
    task_id = UnicodeAttribute(null=True)
    followed_up_at = UTCDateTimeAttribute(null=True)  # the first follow-up (follow-up time)
    followed_up_by = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)  # the latest (by `at`): contacted | converted | lost
    outcome_at = UTCDateTimeAttribute(null=True)
    closed_at = UTCDateTimeAttribute(null=True)  # the earliest follow-up that converted or lost it
    closed_outcome = UnicodeAttribute(null=True)
    closed_by = UnicodeAttribute(null=True)
    rev = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()


class FeedbackItem(Item, discriminator="feedback"):
    """An issue a dealer raised with HQ, and when HQ first replied and brought a solution."""

    feedback_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    category = UnicodeAttribute(null=True)
    text = SealedAttribute(null=True)
    opened_at = UTCDateTimeAttribute(null=True)
    first_reply_at = UTCDateTimeAttribute(null=True)
    solution_at = UTCDateTimeAttribute(null=True)
    rev = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()


class FeedbackRefItem(Item, discriminator="feedback_ref"):
    """Under `FEEDBACKID#<id>`: a dealer that opened feedback of this id (HQ's replies name only the
    id), or HQ's reply that came before any did (`REPLY#…`), to be applied when it opens."""

    feedback_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute(null=True)
    noted_at = UTCDateTimeAttribute(null=True)  # when the dealer's feedback was received
    reply = JSONAttribute(null=True)  # {kind, by, at}


class RiskSignalItem(Item, discriminator="risk_signal"):
    """Under the dealer: an audit that found a shortfall (stock, documents, GPS)."""

    dealer_id = UnicodeAttribute()
    audited_at = UTCDateTimeAttribute()
    reasons = ListAttribute(of=UnicodeAttribute)
    figures = JSONAttribute()
    webhook_id = UnicodeAttribute()


class FactItem(Item, discriminator="fact"):
    """Under `FACT#<dealer>` (sk `<kind>#<subject>`): one thing a KPI or incentive counts, in the
    local index by when it counts (`lsi1sk` = `<UTC instant>#<kind>#<subject>`), so a week or a
    month is one range. A fact that mirrors a record carries the record's `rev` and is replaced
    only by a newer one, whatever order the writes land in."""

    kind = UnicodeAttribute()  # handover | complaint | lead_closed | follow_up | survey
    counts_at = UTCDateTimeAttribute()
    values = JSONAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)  # complaint: when its solution was due
    solution_at = UTCDateTimeAttribute(null=True)
    rev = NumberAttribute(null=True)


class StaffItem(Item, discriminator="staff"):
    """Under the dealer (sk `STAFF#<role>#<id>`): a member of its staff events have named (an
    advisor or specialist of a delivery, who captured or followed up a lead); incentives list them."""

    role = UnicodeAttribute()  # sales | after_sales
    staff_id = UnicodeAttribute()


class LoanItem(Item, discriminator="loan"):
    """Under the loan's dealer (sk `LOAN#<finance partner>#<loan id>`), so the dealer's loans list
    in one query: the schedule as booked, the installments paid (a set: payments add to it in any
    order), and whether the finance arm settled it."""

    loan_id = UnicodeAttribute()
    finance_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    vin = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    principal_minor = NumberAttribute()
    currency = UnicodeAttribute()
    schedule = JSONAttribute()  # [{seq, due_date, amount_minor, payment_ref}]
    paid_seqs = NumberSetAttribute(null=True)
    booked_at = UTCDateTimeAttribute()
    settled_at = UTCDateTimeAttribute(null=True)
    dpd_bucket = UnicodeAttribute(null=True)  # the DPD bucket last recorded (its changes are on the timeline)
    updated_at = UTCDateTimeAttribute()


class LoanRefItem(Item, discriminator="loan_ref"):
    """Under `LOAN#<finance partner>#<loan id>` (sk `LOAN`): the loan's dealer (a `loan.settled`
    names only the loan), or the settlement that came before the booking."""

    dealer_id = UnicodeAttribute(null=True)
    settled_at = UTCDateTimeAttribute(null=True)


class PaymentRefItem(Item, discriminator="payment_ref"):
    """Under `PAYREF#<payment ref>`: the installment a gateway's order number pays."""

    finance_id = UnicodeAttribute()
    loan_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    seq = NumberAttribute()
    amount_minor = NumberAttribute()


class PlatformKey(MapAttribute[str, Any]):
    serial = UnicodeAttribute()
    public_key = UnicodeAttribute()  # PEM: public, kept as it is
    added_at = UTCDateTimeAttribute()


class GatewayItem(Item, discriminator="gateway"):
    """Under `GATEWAY#<name>` (sk `CONFIG`): how to verify a payment gateway's notifications. The
    WeChat APIv3 key is KMS-encrypted like partner secrets; public keys are kept as they are."""

    gateway = UnicodeAttribute()  # wechatpay | alipay
    merchant_id = UnicodeAttribute()  # WeChat mchid, Alipay app_id
    sealed_key = UnicodeAttribute(null=True)  # WeChat: the APIv3 key, sealed
    platform_keys = ListAttribute(of=PlatformKey, default=list)  # several during a rotation
    updated_at = UTCDateTimeAttribute()


class PaymentItem(Item, discriminator="payment"):
    """Under `PAYMENT#<gateway>#<transaction id>` (sk `PAYMENT`): one gateway transaction, however
    often it was notified (the dedup record), and what became of it."""

    gateway = UnicodeAttribute()
    transaction_id = UnicodeAttribute()
    payment_ref = UnicodeAttribute()
    amount_minor = NumberAttribute()
    paid_at = UTCDateTimeAttribute(null=True)
    status = UnicodeAttribute()  # received | applied | waiting | suspect | ignored
    reason = UnicodeAttribute(null=True)  # suspect: foreign_merchant, amount_mismatch; ignored: not_a_success
    loan = JSONAttribute(null=True)  # {finance_id, loan_id, dealer_id, seq} once matched
    received_at = UTCDateTimeAttribute()
    applied_at = UTCDateTimeAttribute(null=True)
    notifications = NumberAttribute(default=0)
    succeeded = BooleanAttribute(null=True)  # what the gateway said (a re-drive applies it again)
    foreign = BooleanAttribute(null=True)  # another merchant's
    redrives = NumberAttribute(default=0)  # times the sweep handed it to applying again


class PaymentWaitItem(Item, discriminator="payment_wait"):
    """Under `PAYWAIT` (sk `<payment ref>#<gateway>#<transaction id>`): a payment for an order
    number no booked loan has yet; the booking applies it."""


class KpiRunItem(Item, discriminator="kpi_run"):
    """Under the dealer: the weekly KPI job judged this week (once)."""

    ran_at = UTCDateTimeAttribute()


class ReminderItem(Item, discriminator="reminder"):
    """One logical customer reminder: when it is due (time, and km for services) and what became of it."""

    reminder_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # first_service | maintenance | insurance_renewal | birthday
    dealer_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    vin = UnicodeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)  # the delivery (tenure) a vehicle reminder belongs to
    trigger_at = UTCDateTimeAttribute()
    details = JSONAttribute(default=dict)  # what the message says: due date/km, policy, stage
    status = UnicodeAttribute()  # scheduled | sent | deferred | suppressed | closed
    reason = UnicodeAttribute(null=True)  # why deferred (quiet_hours), suppressed or closed
    fired_at = UTCDateTimeAttribute(null=True)
    fired_by = UnicodeAttribute(null=True)  # date | km
    send_at = UTCDateTimeAttribute(null=True)  # when its SMS goes (or went) out
    updated_at = UTCDateTimeAttribute()


class OutboxItem(Item, discriminator="outbox"):
    outbox_id = UnicodeAttribute()
    channel = UnicodeAttribute()  # topic | sms
    target = SealedAttribute()  # topic key (staff_tasks, ops, red_alerts) or E.164 number
    message = SealedAttribute()  # JSON body or SMS text
    attributes = JSONAttribute(default=dict)  # SNS message attributes {name: str | list[str]}
    status = UnicodeAttribute()  # pending | delivered; SMS: queued | delivered | suppressed
    send_after = UTCDateTimeAttribute(null=True)  # SMS: not before (quiet hours)
    created_at = UTCDateTimeAttribute()
    delivered_at = UTCDateTimeAttribute(null=True)
    source = UnicodeAttribute(null=True)  # what caused it (event or sweep), for tracing
    handoffs = NumberAttribute(default=0)  # times handed to the retry queue (failed or found lost)
    last_error = UnicodeAttribute(null=True)  # why its latest delivery failed (phones masked)


ALL_MODELS: tuple[type[Item], ...] = (
    Item,
    PartnerItem,
    ApiKeyItem,
    InboxItem,
    CustomerItem,
    VehicleOwnerItem,
    VehicleItem,
    TaskRefItem,
    WaitItem,
    TimelineItem,
    TaskItem,
    ReminderItem,
    OutboxItem,
    ComplaintItem,
    LeadItem,
    FeedbackItem,
    FeedbackRefItem,
    RiskSignalItem,
    FactItem,
    StaffItem,
    KpiRunItem,
    LoanItem,
    LoanRefItem,
    PaymentRefItem,
    GatewayItem,
    PaymentItem,
    PaymentWaitItem,
    TagSignalItem,
    TagMemberItem,
)
