"""`GET /openapi.json`: the API as OpenAPI 3.1, with every event's `data` as JSON Schema.

The event schemas are generated from the pydantic models the webhook validates with (never
written by hand), so an integrator can generate a client and check a payload before sending it.
Routes, parameters and answers are described here, next to the routes they describe; a test
checks that every route of the app and every event type of the registry is in the document.
Built on first request only (it imports every event model) and kept for the process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.api.problems import CONTENT_TYPE as PROBLEM_TYPE
from chalicelib.domain.tasks import STATUSES

VERSION = "1"
REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


UNAUTHORIZED = _problem("Missing or unknown API key (one answer for every authentication failure).")
NOT_YOURS = _problem("Not found, or not the caller's (another dealer's data answers exactly so).")
KEY: list[dict[str, list[str]]] = [{"apiKey": []}]

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `type` names the refusal, e.g. /problems/implausible.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "examples": ["/problems/invalid-fields"]},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"enum": ["accepted", "duplicate"]}},
    },
    "Task": {
        "type": "object",
        "required": ["task_id", "kind", "assignee_id", "assignee_role", "due_at", "status", "created_at"],
        "properties": {
            "task_id": {"type": "string"},
            "kind": {"type": "string"},
            "assignee_id": {
                "type": ["string", "null"],
                "description": "null: the role's task, not yet assigned to one person",
            },
            "assignee_role": {"type": "string"},
            "vin": _nullable("string"),
            "due_at": {"type": "string", "format": "date-time"},
            "status": {"enum": list(STATUSES)},
            "created_at": {"type": "string", "format": "date-time"},
            "ref": _nullable("string"),
            "closed_at": {"type": ["string", "null"], "format": "date-time"},
            "closed_reason": _nullable("string"),
            "details": {
                "type": "object",
                "description": "What the kind adds: who else is involved, a lead's grade, which clock.",
            },
            "hold": {
                "type": ["object", "null"],
                "description": "collections tasks only: why collections must wait (an open red-alert "
                "complaint about the vehicle: reason red_complaint_open, complaint_ids), or null.",
            },
            "customer_tags": {
                "type": "array",
                "items": _ref("TaskTag"),
                "description": "care-call, booking, return-visit and lead tasks only: the customer's "
                "preference tags as they are now, each with its talking point.",
            },
        },
    },
    "TaskTag": {
        "type": "object",
        "required": ["tag", "label", "talking_point", "since"],
        "properties": {
            "tag": {"type": "string"},
            "label": _ref("Localised"),
            "talking_point": {"oneOf": [_ref("Localised"), {"type": "null"}]},
            "since": {"type": "string", "format": "date-time"},
        },
    },
    "Localised": {
        "type": "object",
        "required": ["zh-CN", "en"],
        "properties": {"zh-CN": {"type": "string"}, "en": {"type": "string"}},
    },
    "CustomerTag": {
        "type": "object",
        "required": ["tag", "label", "talking_point", "since", "evidence"],
        "properties": {
            "tag": {"type": "string"},
            "label": _ref("Localised"),
            "talking_point": {"oneOf": [_ref("Localised"), {"type": "null"}]},
            "since": {"type": "string", "format": "date-time", "description": "first carried"},
            "evidence": {
                "type": "array",
                "items": {"type": "object"},
                "description": "what makes it hold: each with `source` (the event type) and its numbers",
            },
        },
    },
    "CustomerProfile": {
        "type": "object",
        "description": "The dealer's customer; name and phone masked.",
        "required": ["customer_id", "name", "phone", "preferences", "vehicles", "tags", "tag_history"],
        "properties": {
            "dealer_id": {"type": "string"},
            "customer_id": {"type": "string"},
            "name": _nullable("string"),
            "phone": _nullable("string"),
            "preferences": {"type": "object"},
            "vehicles": {"type": "array", "items": {"type": "object"}},
            "tags": {"type": "array", "items": _ref("CustomerTag")},
            "tag_history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "tag": {"type": "string"},
                        "change": {"enum": ["added", "dropped"]},
                        "at": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    },
    "TagCounts": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "dealer_id": {"type": "string"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "tag": {"type": "string"},
                        "label": _ref("Localised"),
                        "customers": {"type": "integer"},
                    },
                },
            },
        },
    },
    "TaskPage": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Task")}, "next": _nullable("string")},
    },
    "Outcome": {
        "type": "object",
        "description": "What became of an accepted event (DESIGN.md §3).",
        "required": ["id", "type", "received_at", "outcome", "attempts"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"},
            "outcome": {"enum": ["pending", "applied", "ignored", "dead_lettered"]},
            "reason": _nullable("string"),
            "attempts": {"type": "integer"},
            "applied_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "VehicleView": {
        "type": "object",
        "description": "One dealer's view of a vehicle; names and phones masked.",
        "required": ["vin", "dealer_id", "status", "delivery", "odometer", "timeline"],
        "properties": {
            "vin": {"type": "string"},
            "dealer_id": {"type": "string"},
            "status": {"enum": ["current", "transferred"]},
            "transferred_at": {"type": ["string", "null"], "format": "date-time"},
            "delivery": {"type": "object"},
            "customer": _nullable("object"),
            "handover": _nullable("object"),
            "handover_confirmation": _nullable("object"),
            "delivery_feedback": _nullable("object"),
            "insurance": _nullable("object"),
            "odometer": {"type": "object"},
            "services": {"type": "array", "items": {"type": "object"}},
            "last_service": _nullable("object"),
            "next_service": {
                "type": ["object", "null"],
                "description": "When the next service is due (date and km) and when its reminder goes out.",
                "properties": {
                    "kind": {"enum": ["first_service", "maintenance"]},
                    "due_at": {"type": "string", "format": "date-time"},
                    "due_km": {"type": "integer"},
                    "remind_at": {"type": "string", "format": "date-time"},
                    "remind_km": {"type": "integer"},
                },
            },
            "reminders": {
                "type": "array",
                "description": "The vehicle's customer reminders and what became of each, and why.",
                "items": {
                    "type": "object",
                    "required": ["reminder_id", "kind", "status", "remind_at"],
                    "properties": {
                        "reminder_id": {"type": "string"},
                        "kind": {"enum": ["first_service", "maintenance", "insurance_renewal"]},
                        "status": {"enum": ["scheduled", "sent", "deferred", "suppressed", "closed"]},
                        "reason": {
                            "type": ["string", "null"],
                            "description": "quiet_hours, sms_opt_out, sns_opted_out, no_phone, serviced, "
                            "renewed, superseded, transferred",
                        },
                        "remind_at": {"type": "string", "format": "date-time"},
                        "fired_at": {"type": ["string", "null"], "format": "date-time"},
                        "fired_by": {"enum": ["date", "km", None]},
                        "send_at": {"type": ["string", "null"], "format": "date-time"},
                        "details": {"type": "object"},
                    },
                },
            },
            "loans": {"type": "array", "items": {"type": "object"}},
            "complaints": {
                "type": "array",
                "description": "The dealer's complaints about the vehicle, triaged; text without phones.",
                "items": {
                    "type": "object",
                    "required": ["complaint_id", "status", "severity"],
                    "properties": {
                        "complaint_id": {"type": "string"},
                        "status": {"enum": ["open", "acknowledged", "solution_proposed", "resolved"]},
                        "severity": {"enum": ["red", "amber", "normal", None]},
                        "matched": {"type": "array", "items": {"type": "object"}},
                        "near_misses": {"type": "array", "items": {"type": "object"}},
                        "alert_id": _nullable("string"),
                        "task_id": _nullable("string"),
                    },
                },
            },
            "leads": {
                "type": "array",
                "description": "The dealer's service leads about the vehicle and their follow-up.",
                "items": {
                    "type": "object",
                    "required": ["lead_id", "status"],
                    "properties": {
                        "lead_id": {"type": "string"},
                        "status": {"enum": ["open", "contacted", "converted", "lost"]},
                        "grade": {"enum": ["A", "B", None]},
                    },
                },
            },
            "timeline": {"type": "array", "items": _ref("TimelineEntry")},
        },
    },
    "Loan": {
        "type": "object",
        "description": "A loan as the dealer sees it today; the customer's name and phone masked.",
        "required": ["loan_id", "vin", "next_due_date", "days_past_due", "outstanding_minor", "status"],
        "properties": {
            "loan_id": {"type": "string"},
            "finance_id": {"type": "string"},
            "vin": {"type": "string"},
            "customer_id": {"type": "string"},
            "customer": {"type": "object"},
            "currency": {"type": "string"},
            "principal_minor": {"type": "integer"},
            "next_due_date": {"type": ["string", "null"], "format": "date"},
            "days_past_due": {"type": "integer"},
            "dpd_bucket": {"enum": ["1-30", "31-60", "61-90", "90+", None]},
            "outstanding_minor": {"type": "integer"},
            "installments_paid": {"type": "integer"},
            "installments": {"type": "integer"},
            "status": {"enum": ["current", "overdue", "settled"]},
            "settled_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "LoanPage": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Loan")}, "next": _nullable("string")},
    },
    "TimelineEntry": {
        "type": "object",
        "description": "An event (or what CLM did about one: alert.raised, reminder.sent …) and its data "
        "without names, phones or birthdays.",
        "required": ["type", "at", "partner_id", "webhook_id", "data"],
        "properties": {
            "type": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "partner_id": {"type": "string"},
            "webhook_id": {"type": "string"},
            "data": {"type": "object"},
        },
    },
    "TimelinePage": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref("TimelineEntry")},
            "next": _nullable("string"),
        },
    },
    "Kpi": {
        "type": "object",
        "required": ["value", "target", "status", "n"],
        "properties": {
            "value": {"type": ["number", "null"], "description": "null when the week has no data"},
            "target": {"type": "number"},
            "status": {"enum": ["green", "red", "no_data"]},
            "n": {"type": "integer", "description": "how many facts the value counts"},
        },
    },
    "KpiBoard": {
        "type": "object",
        "description": "A dealer's KPIs of one ISO week (from Monday 00:00 in the dealers' time zone).",
        "required": [
            "dealer_id",
            "week",
            "handover_accuracy",
            "lead_conversion",
            "joint_satisfaction",
            "complaint_response_24h",
        ],
        "properties": {
            "dealer_id": {"type": "string"},
            "week": {"type": "string", "pattern": "^\\d{4}-W\\d{2}$"},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "as_of": {"type": "string", "format": "date-time"},
            "handover_accuracy": _ref("Kpi"),
            "lead_conversion": _ref("Kpi"),
            "joint_satisfaction": _ref("Kpi"),
            "complaint_response_24h": _ref("Kpi"),
            "lead_follow_up_hours": {
                "type": "object",
                "properties": {"median": {"type": ["number", "null"]}, "n": {"type": "integer"}},
            },
            "risk_signals": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Incentives": {
        "type": "object",
        "required": ["dealer_id", "month", "items"],
        "properties": {
            "dealer_id": {"type": "string"},
            "month": {"type": "string", "pattern": "^\\d{4}-\\d{2}$"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["staff_id", "role"],
                    "properties": {
                        "staff_id": {"type": "string"},
                        "role": {"enum": ["sales", "after_sales"]},
                        "after_sales_satisfaction": {
                            "type": "object",
                            "properties": {"mean": {"type": ["number", "null"]}, "n": {"type": "integer"}},
                        },
                        "commission_factor": {"type": "number"},
                        "converted_leads": {"type": "integer"},
                    },
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "time"],
        "properties": {"status": {"const": "ok"}, "time": {"type": "string", "format": "date-time"}},
    },
}


def _webhook() -> dict[str, Any]:
    signed = [
        {
            "name": header,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": description,
        }
        for header, description in (
            (
                "webhook-id",
                "Unique per event, reused on retries (1-256 printable characters); the dedup key.",
            ),
            ("webhook-timestamp", "Unix seconds; more than 5 minutes off the receiver's clock is refused."),
        )
    ]
    return {
        "post": {
            "operationId": "sendEvent",
            "summary": "A signed partner event (Standard Webhooks); applied after the answer.",
            "security": [{"standardWebhooks": []}],
            "parameters": [_path_param("partner_id", "The sending partner."), *signed],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Event")}},
            },
            "responses": {
                "202": _json(
                    "Accepted: it will be applied; its outcome is readable by its sender.", _ref("Accepted")
                ),
                "200": _json(
                    "A duplicate of an accepted event (same webhook-id, same body).", _ref("Accepted")
                ),
                "400": _problem("Not JSON, or a bad webhook-id."),
                "401": _problem("Unknown partner, bad or stale signature (one answer for all)."),
                "403": _problem("This kind of partner may not send this event type."),
                "409": _problem("The webhook-id was used before with a different body."),
                "413": _problem("The body exceeds 256 KiB."),
                "415": _problem("Not application/json in UTF-8, or a Content-Encoding."),
                "422": _problem("Unknown type, invalid fields, or an implausible odometer reading."),
                "503": _problem(
                    "Readings for one vehicle arrive faster than they can be judged: send again."
                ),
            },
        }
    }


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An optional query parameter; sent empty (`?status=`), it counts as left out (DESIGN.md §8)."""
    return {
        "name": name,
        "in": "query",
        "schema": schema,
        "allowEmptyValue": True,
        "description": f"{description} Empty: as if left out.".strip(),
    }


PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    _query("next", {"type": "string"}, "A page's `next`."),
]


def _period_read(
    operation: str, summary: str, period: tuple[str, str, str], answer: tuple[str, str]
) -> dict[str, Any]:
    """A dealer's figures over a period named by one query parameter (`week`, `month`)."""
    name, pattern, refused = period
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "security": KEY,
            "parameters": [
                _path_param("dealer_id", "The dealer whose data is read (a dealer key reads only its own)."),
                _query(name, {"type": "string", "pattern": pattern}, "Left out: the current one."),
            ],
            "responses": {
                "200": _json(answer[0], _ref(answer[1])),
                "400": _problem(refused),
                "401": UNAUTHORIZED,
                "404": NOT_YOURS,
            },
        }
    }


def _gateway_paths() -> dict[str, Any]:
    """The payment gateways' own notification formats (DESIGN.md §5)."""
    fail = {"type": "object", "properties": {"code": {"const": "FAIL"}, "message": {"type": "string"}}}
    wechat_headers = [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial")
    ]
    return {
        "/webhooks/payments/wechatpay": {
            "post": {
                "operationId": "wechatpayNotification",
                "summary": "A WeChat Pay API v3 notification (RSA-SHA256 signed, AES-256-GCM resource).",
                "parameters": wechat_headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "204": {"description": "Kept (and applied once per transaction id)."},
                    "401": _json("Not WeChat Pay's: verification failed.", fail),
                    "500": _json("Our fault: send it again.", fail),
                },
            }
        },
        "/webhooks/payments/alipay": {
            "post": {
                "operationId": "alipayNotification",
                "summary": "An Alipay asynchronous notification (form-encoded, RSA2 signed).",
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {
                        "description": "`success`: kept (and applied once per trade_no).",
                        "content": {"text/plain": {"schema": {"const": "success"}}},
                    },
                    "400": {
                        "description": "`fail`: not Alipay's.",
                        "content": {"text/plain": {"schema": {"const": "fail"}}},
                    },
                    "500": {
                        "description": "`fail`: our fault, send it again.",
                        "content": {"text/plain": {"schema": {"const": "fail"}}},
                    },
                },
            }
        },
    }


def _read_paths() -> dict[str, Any]:
    dealer = _path_param("dealer_id", "The dealer whose data is read (a dealer key reads only its own).")
    return {
        "/dealers/{dealer_id}/tasks": {
            "get": {
                "operationId": "listTasks",
                "summary": "A dealer's tasks by due time, then id; one page.",
                "security": KEY,
                "parameters": [
                    dealer,
                    _query("status", {"enum": list(STATUSES)}),
                    _query("assignee", {"type": "string"}),
                    *PAGING,
                ],
                "responses": {
                    "200": _json("One page.", _ref("TaskPage")),
                    "400": _problem("Unknown status, bad limit or cursor."),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/tasks/{task_id}/complete": {
            "post": {
                "operationId": "completeTask",
                "summary": "Close a task by hand (again: its current state).",
                "security": KEY,
                "parameters": [dealer, _path_param("task_id", "The task.")],
                "responses": {
                    "200": _json("The task as it now is.", _ref("Task")),
                    "401": UNAUTHORIZED,
                    "403": _problem("This key may not complete a task of that role."),
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/vehicles/{vin}": {
            "get": {
                "operationId": "vehicleTimeline",
                "summary": "One vehicle's timeline as the dealer sees it.",
                "security": KEY,
                "parameters": [dealer, _path_param("vin", "17 characters, no I, O or Q.")],
                "responses": {
                    "200": _json("The view.", _ref("VehicleView")),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/timeline": {
            "get": {
                "operationId": "dealerTimeline",
                "summary": "The dealer's records as they happened, newest first: complaints, alerts, leads, "
                "feedback, audits, customers, loans.",
                "security": KEY,
                "parameters": [
                    dealer,
                    *PAGING,
                ],
                "responses": {
                    "200": _json("One page.", _ref("TimelinePage")),
                    "400": _problem("Bad limit or cursor."),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/loans": {
            "get": {
                "operationId": "dealerLoans",
                "summary": "The dealer's customers' loans and where each stands today.",
                "security": KEY,
                "parameters": [
                    dealer,
                    _query("status", {"enum": ["current", "overdue", "settled"]}),
                    *PAGING,
                ],
                "responses": {
                    "200": _json("One page.", _ref("LoanPage")),
                    "400": _problem("Unknown status, bad limit or cursor."),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/customers/{customer_id}": {
            "get": {
                "operationId": "dealerCustomer",
                "summary": "The dealer's customer: preferences, vehicles, preference tags with evidence.",
                "security": KEY,
                "parameters": [
                    dealer,
                    {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("The profile.", _ref("CustomerProfile")),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/tags": {
            "get": {
                "operationId": "dealerTags",
                "summary": "How many of the dealer's customers carry each preference tag.",
                "security": KEY,
                "parameters": [dealer],
                "responses": {
                    "200": _json("Every tag of the rules, with its count.", _ref("TagCounts")),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/dealers/{dealer_id}/kpis": _period_read(
            "dealerKpis",
            "The dealer's KPI board of an ISO week (default: the current week).",
            ("week", "^\\d{4}-W\\d{2}$", "Not an ISO week (YYYY-Www)."),
            ("The board.", "KpiBoard"),
        ),
        "/dealers/{dealer_id}/incentives": _period_read(
            "dealerIncentives",
            "Advisors' satisfaction and commission factor, specialists' converted leads.",
            ("month", "^\\d{4}-\\d{2}$", "Not a month (YYYY-MM)."),
            ("The month's figures.", "Incentives"),
        ),
        "/partners/{partner_id}/events/{webhook_id}": {
            "get": {
                "operationId": "eventOutcome",
                "summary": "What became of an accepted event; its sender only.",
                "security": KEY,
                "parameters": [
                    _path_param("partner_id", "The sender."),
                    _path_param("webhook_id", "Its id."),
                ],
                "responses": {
                    "200": _json("The outcome.", _ref("Outcome")),
                    "401": UNAUTHORIZED,
                    "404": NOT_YOURS,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document; no key needed.",
                "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Whether the table answers.",
                "responses": {
                    "200": _json("Healthy.", _ref("Health")),
                    "503": _problem("The table does not answer."),
                },
            }
        },
    }


def _events() -> dict[str, Any]:
    """Each event type's envelope and data schema, generated from its pydantic model."""
    from pydantic.json_schema import models_json_schema

    from chalicelib.events import EVENT_SPECS

    specs = list(EVENT_SPECS.values())
    models = [(spec.model, "validation") for spec in specs]
    keyed, shared = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = dict(shared.get("$defs", {}))
    envelopes: dict[str, str] = {}
    for spec in specs:
        data = keyed[(spec.model, "validation")]
        name = "Event_" + spec.type.replace(".", "_")
        schemas[name] = {
            "type": "object",
            "description": f"`{spec.type}`, sent by {', '.join(sorted(spec.kinds))} partners.",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"const": spec.type},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": data,
            },
        }
        envelopes[spec.type] = f"#/components/schemas/{name}"
    schemas["Event"] = {
        "oneOf": [{"$ref": ref} for ref in envelopes.values()],
        "discriminator": {"propertyName": "type", "mapping": envelopes},
    }
    return schemas


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CLM",
            "version": VERSION,
            "description": "Partner webhooks in; the staff read API out. Times are RFC 3339 with an offset.",
        },
        "paths": {"/webhooks/{partner_id}": _webhook(), **_gateway_paths(), **_read_paths()},
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A partner's API key (`Authorization: Bearer <key>`); a missing or "
                    "unknown one answers 401.",
                },
                "standardWebhooks": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256 of "
                    "{webhook-id}.{webhook-timestamp}.{raw body}>` with the base64-decoded `whsec_` "
                    "secret; any current secret's signature passes. Missing, bad or stale: 401.",
                },
            },
            "schemas": {**SCHEMAS, **_events()},
        },
    }
