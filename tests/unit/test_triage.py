"""Red-alert triage: the same rule reads simplified, traditional, regional, full-width, spaced and
English text; benign text and near-misses raise nothing."""

from __future__ import annotations

import pytest

from chalicelib.domain.triage import default_rules, excerpt, load_rules, triage

RED = [
    ("客户反映高速行驶时刹车失灵,非常危险", "brake_failure"),
    ("剎車失靈", "brake_failure"),  # traditional
    ("煞車失靈了，差點撞車", "brake_failure"),  # Taiwan: 煞車
    ("架車煞掣失靈", "brake_failure"),  # Hong Kong: 煞掣
    ("刹 车  失\u3000灵", "brake_failure"),  # spaced out, an ideographic space among them
    ("刹\u200b车失灵", "brake_failure"),  # a zero-width space
    ("刹车失效", "brake_failed"),
    ("制动失灵", "braking_failure"),
    ("引擎異音很大", "engine_noise"),  # TW/HK 引擎 = 发动机, 異音 = 异响
    ("发动机异响", "engine_noise"),
    ("軚盤失靈", "steering_failure"),  # HK 軚盤 = 方向盘
    ("方向盤失靈", "steering_failure"),
    ("停在车库里自燃了", "spontaneous_combustion"),
    ("车头起火", "fire"),
    ("車頭著火", "fire"),  # 著火 = 起火
    ("引擎盖冒烟", "smoke"),
    ("底盘断轴", "broken_axle"),
    ("撞车后气囊未弹出", "airbag_not_deployed"),
    ("氣袋冇彈出", "airbag_not_deployed"),  # HK
    ("电池起火", "battery_fire"),
    ("Brake failure on the highway", "brake_failure_en"),
    ("ＢＲＡＫＥ　ＦＡＩＬＵＲＥ", "brake_failure_en"),  # full-width letters and space
    ("My brakes   failed twice", "brakes_failed_en"),
    ("loud ENGINE NOISE at idle", "engine_noise_en"),
    ("steering failure in the rain", "steering_failure_en"),
    ("the car caught fire!", "fire_en"),
    ("Smoke from the dashboard", "smoke_en"),
]


@pytest.mark.parametrize(("text", "rule"), RED)
def test_a_safety_risk_is_red_in_every_script_and_spelling(text: str, rule: str) -> None:
    found = triage(text)
    assert found.severity == "red"
    assert rule in [r.rule_id for r in found.matched]


@pytest.mark.parametrize(
    ("text", "near"),
    [
        ("刹车片更换多少钱", []),
        ("我坐着火车来取车，车还没修好", []),  # 着火 across a word boundary: by train
        ("我坐著火車來取車", []),
        ("晚上吃着火锅聊到保养", []),
        ("保养预约下周三", []),
        ("刹车有点软，空调也失灵", ["brake_failure"]),  # both words, not the phrase
        ("The engine fired up fine", ["fire_en"]),  # "fire" is not "fired"
        ("smoked glass option please", ["smoke_en"]),
        ("the brake pedal feels odd; the radio is a failure", ["brake_failure_en"]),
    ],
)
def test_benign_text_raises_nothing_and_keeps_its_near_misses(text: str, near: list[str]) -> None:
    found = triage(text)
    assert found.severity == "normal"
    assert found.matched == ()
    assert [r.rule_id for r in found.near_misses] == near


def test_an_amber_rule_is_not_red_and_red_wins_when_both_fire() -> None:
    assert triage("发现漏油").severity == "amber"
    both = triage("漏油以后冒烟")
    assert both.severity == "red"
    assert {r.rule_id for r in both.matched} == {"oil_leak", "smoke"}


def test_every_phrase_the_contract_names_is_a_red_rule() -> None:
    phrases = {r.phrase for r in default_rules().rules if r.severity == "red"}
    required = [
        "刹车失灵",
        "刹车失效",
        "制动失灵",
        "发动机异响",
        "方向盘失灵",
        "自燃",
        "起火",
        "冒烟",
        "断轴",
        "气囊未弹出",
        "电池起火",
    ]
    english = ["brake failure", "brakes failed", "engine noise", "steering failure", "fire", "smoke"]
    assert set(required + english) <= phrases


def test_rules_are_data_and_bad_data_is_refused() -> None:
    rules = load_rules(
        {
            "synonyms": [{"variant": "煞車", "standard": "刹车"}],
            "rules": [{"id": "x", "phrase": "刹车", "severity": "red"}],
        }
    )
    assert triage("煞車", rules).severity == "red"
    with pytest.raises(ValueError, match="unknown severity"):
        load_rules({"synonyms": [], "rules": [{"id": "x", "phrase": "a", "severity": "purple"}]})
    with pytest.raises(ValueError, match="twice"):
        load_rules({"synonyms": [], "rules": [{"id": "x", "phrase": "a", "severity": "red"}] * 2})


def test_an_excerpt_is_short_and_carries_no_phone_number() -> None:
    text = (
        "客户电话 138 0013 8000，座机 010-6552-9988，另一个 +86 139-0013-9000，订单号 12345："
        + "刹车失灵" * 40
    )
    found = excerpt(text)
    assert len(found) <= 80
    for digits in ("13800138000", "0013", "6552", "9988", "13900139000"):
        assert digits not in found.replace(" ", "").replace("-", "")
    assert "12345" in found  # a short number is not a phone
