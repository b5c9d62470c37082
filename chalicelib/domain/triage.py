"""Red-alert triage of complaint text (DESIGN.md §6, seed 002 §5). Pure: no AWS.

Text is normalised before matching, so the same rule reads simplified and traditional Chinese,
full-width and spaced-out writing and English: NFKC (which also turns full-width letters, digits
and spaces half-width), case folded, traditional to simplified (OpenCC `t2s`), and the regional
words of Taiwan and Hong Kong mapped to the mainland ones (script conversion alone keeps 煞车,
which is 刹车). Chinese rules then match inside the text with every space removed; English rules
match whole words ("fire" is not "fired").

A rule whose words all occur, but not as its phrase ("刹车…失灵" far apart, "fired"), is a
near-miss: it raises nothing, and is kept on the complaint so the rule list can be tuned.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.domain.masking import mask_phones_in

RULES_FILE = Path(__file__).with_name("data") / "triage_rules.json"
SEVERITY_ORDER = ("red", "amber")  # most severe first
NORMAL = "normal"  # nothing matched
EXCERPT_CHARS = 80


@dataclass(frozen=True)
class Rule:
    rule_id: str
    phrase: str  # normalised
    severity: str
    words: tuple[str, ...]  # normalised; all present without the phrase: a near-miss
    english: bool

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule_id, "phrase": self.phrase, "severity": self.severity}


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    synonyms: tuple[tuple[str, str], ...]  # (normalised variant, normalised standard), longest first
    unless: tuple[str, ...] = ()  # phrases in which a variant is not that word (坐着火车: a train)


@dataclass(frozen=True)
class Triage:
    severity: str  # red | amber | normal
    matched: tuple[Rule, ...]
    near_misses: tuple[Rule, ...]

    @property
    def red(self) -> bool:
        return self.severity == "red"


@cache
def _t2s() -> Any:
    import opencc  # a native library: loaded by the first complaint, not at cold start

    return opencc.OpenCC("t2s")


_JOINERS = re.compile(r"[-‐‑‒–—―_/·・•]+")  # brake-failure, 刹车-失灵: read as spaced out


def _script(text: str) -> str:
    """NFKC, case folded, traditional to simplified; dashes and slashes, and whitespace runs,
    become one space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Format characters (zero-width spaces and joiners) would split a phrase invisibly.
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    spaced = _JOINERS.sub(" ", str(_t2s().convert(visible)))
    return re.sub(r"\s+", " ", spaced).strip()


def fold(text: str) -> str:
    """Text as every rule of the hub reads it (NFKC, case folded, simplified script, one space)."""
    return _script(text)


def load_rules(raw: dict[str, Any]) -> RuleSet:
    """A rule set from its data (the JSON file's shape); every phrase normalised like text is."""
    severities = set(raw.get("severities") or SEVERITY_ORDER)
    rules: list[Rule] = []
    seen: set[str] = set()
    for entry in raw["rules"]:
        rule_id, severity = str(entry["id"]), str(entry["severity"])
        if rule_id in seen:
            raise ValueError(f"triage rule {rule_id} appears twice")
        if severity not in severities or severity not in SEVERITY_ORDER:
            raise ValueError(f"triage rule {rule_id}: unknown severity {severity}")
        seen.add(rule_id)
        phrase = _script(str(entry["phrase"]))
        english = phrase.isascii()
        words = tuple(_script(str(w)) for w in entry.get("words") or (phrase.split() if english else ()))
        rules.append(Rule(rule_id, phrase if english else phrase.replace(" ", ""), severity, words, english))

    def compact(value: str) -> str:
        return _script(value).replace(" ", "")

    synonyms = sorted(
        ((compact(s["variant"]), compact(s["standard"])) for s in raw["synonyms"]),
        key=lambda pair: -len(pair[0]),
    )
    unless = sorted(
        {compact(u) for s in raw["synonyms"] for u in s.get("unless") or ()}, key=len, reverse=True
    )
    return RuleSet(tuple(rules), tuple(synonyms), tuple(unless))


@cache
def default_rules() -> RuleSet:
    return load_rules(json.loads(RULES_FILE.read_text(encoding="utf-8")))


def _substitute(text: str, ruleset: RuleSet) -> str:
    """Regional words to the mainland ones, except inside the phrases where they are not that word."""
    kept: list[str] = []

    def keep(found: re.Match[str]) -> str:
        kept.append(found.group())
        return f"\ue000{len(kept) - 1}\ue001"  # private-use marks: no rule contains them

    if ruleset.unless:
        text = re.sub("|".join(re.escape(u) for u in ruleset.unless), keep, text)
    for variant, standard in ruleset.synonyms:
        text = text.replace(variant, standard)
    return re.sub("\ue000(\\d+)\ue001", lambda m: kept[int(m.group(1))], text)


def normalise(text: str, rules: RuleSet | None = None) -> tuple[str, str]:
    """The text as rules read it: (spaced, for English words; compact, for Chinese phrases)."""
    ruleset = rules or default_rules()
    spaced = _substitute(_script(text), ruleset)
    compact = _substitute(spaced.replace(" ", ""), ruleset)  # a variant written with spaces
    return spaced, compact


def _whole(phrase: str) -> re.Pattern[str]:
    words = (re.escape(w) for w in phrase.split())
    return re.compile(r"(?<![0-9a-z])" + r"\s+".join(words) + r"(?![0-9a-z])")


def _matches(rule: Rule, spaced: str, compact: str) -> bool:
    if rule.english:
        return _whole(rule.phrase).search(spaced) is not None
    return rule.phrase in compact


def _near(rule: Rule, spaced: str, compact: str) -> bool:
    if rule.english:
        if len(rule.words) > 1:
            return all(_whole(w).search(spaced) for w in rule.words)
        return rule.phrase in spaced  # inside a longer word: "fired", "smoked"
    return bool(rule.words) and all(w in compact for w in rule.words)


def triage(text: str, rules: RuleSet | None = None) -> Triage:
    """The rules the text fires, the most severe one's severity, and the near-misses."""
    ruleset = rules or default_rules()
    spaced, compact = normalise(text, ruleset)
    matched = tuple(r for r in ruleset.rules if _matches(r, spaced, compact))
    near = tuple(r for r in ruleset.rules if r not in matched and _near(r, spaced, compact))
    severity = next((s for s in SEVERITY_ORDER if any(r.severity == s for r in matched)), NORMAL)
    return Triage(severity, matched, near)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of the text, for an alert: whitespace collapsed, no phone numbers."""
    flat = mask_phones_in(re.sub(r"\s+", " ", text).strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
