"""What a cadre's own choices do to their next list: the study plan and their feedback on suggestions.

A cadre keeps a suggestion in their study plan, or answers it: 已学过, 不相关 or 以后再说 (the states and their
labels are ``rules.yaml`` ``feedback.states``; the choices themselves are stored by :mod:`kg.choices` and come
with the cadre's profile).  Kept, learnt and irrelevant items leave the suggestions — a kept one is in the plan,
so it is not suggested twice; an item put off for later stays eligible but loses ``feedback.later_penalty`` of
its score for ``feedback.later_days`` days from the day it was put off, and then counts as before.  Every one of
these is said in words: the list's note counts what was left out, a pushed-down item's details say why.

A choice applies whatever day a report is "as of": it is what the cadre wants now, not a past record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kg.choices import Choice

__all__ = ["HIDDEN_STATES", "LATER", "ChoiceEffect", "FeedbackRules", "choice_effect"]

#: States whose item is no longer suggested, and the one that only pushes an item down.
HIDDEN_STATES = ("planned", "done", "irrelevant")
LATER = "later"


@dataclass(frozen=True)
class FeedbackRules:
    """``rules.yaml`` ``feedback``: state key → label, and how far and how long 以后再说 pushes an item down."""

    states: Mapping[str, str]
    actions: Mapping[str, str]  # state → the words on the button that sets it ("加入学习计划")
    later_days: int
    later_penalty: float

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any]) -> FeedbackRules:
        section = rules.get("feedback")
        try:
            states = dict(section["states"])
            found = cls(states, dict(section["actions"]), int(section["later_days"]), float(section["later_penalty"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"ontology/rules.yaml 的 feedback 配置不完整或类型不对（需要 states、actions、later_days、"
                             f"later_penalty）：{exc}") from exc
        missing = [s for s in (*HIDDEN_STATES, LATER) if s not in states or s not in found.actions]
        if missing:
            raise ValueError(f"ontology/rules.yaml 的 feedback.states 或 feedback.actions 缺少 {'、'.join(missing)}")
        return found

    def label(self, state: str) -> str:
        return self.states.get(state, state)


@dataclass(frozen=True)
class ChoiceEffect:
    """A cadre's choices as the ranker applies them on one day: course positions left out and pushed down,
    every item id left out (textbooks, cases and sites too), and the words for both."""

    rules: FeedbackRules
    hidden: np.ndarray  # course positions no longer suggested
    later: np.ndarray  # course positions pushed down today
    hidden_ids: frozenset[str]
    marks: Mapping[str, Choice]  # item id → the choice in force today

    @property
    def penalty(self) -> float:
        return self.rules.later_penalty

    def detail(self, item_id: str) -> str | None:
        """"您已标记「以后再说」（2026-11-20），30 天内排在后面" for an item pushed down, else None."""
        choice = self.marks.get(item_id)
        if choice is None or choice.state != LATER:
            return None
        until = choice.day + dt.timedelta(days=self.rules.later_days)
        return f"您已标记「{self.rules.label(LATER)}」（{choice.day.isoformat()}），{until.isoformat()} 前排在后面"

    def note(self) -> str:
        """"您已标记的 3 项不再推荐（已列入学习计划 1、不相关 2）；1 项「以后再说」暂时排后。", or "" with no marks."""
        counts: dict[str, int] = {}
        for choice in self.marks.values():
            counts[choice.state] = counts.get(choice.state, 0) + 1
        parts = []
        hidden = sum(counts.get(s, 0) for s in HIDDEN_STATES)
        if hidden:
            each = "、".join(f"{self.rules.label(s)} {counts[s]}" for s in HIDDEN_STATES if counts.get(s))
            parts.append(f"您已标记的 {hidden} 项不再推荐（{each}）")
        if counts.get(LATER):
            parts.append(f"{counts[LATER]} 项「{self.rules.label(LATER)}」暂时排后")
        return "；".join(parts) + "。" if parts else ""


def choice_effect(choices: Iterable[Choice], course_pos: Mapping[str, int], rules: FeedbackRules,
                  today: dt.date) -> ChoiceEffect:
    """The effect of ``choices`` on ``today``'s list; a 以后再说 older than ``later_days`` has none."""
    marks: dict[str, Choice] = {}
    for choice in choices:
        if choice.state in HIDDEN_STATES or (choice.state == LATER
                                             and (today - choice.day).days < rules.later_days):
            marks[choice.item_id] = choice
    hidden_ids = frozenset(i for i, c in marks.items() if c.state in HIDDEN_STATES)

    def positions(ids: Iterable[str]) -> np.ndarray:
        return np.array(sorted(course_pos[i] for i in ids if i in course_pos), dtype=np.int64)

    return ChoiceEffect(rules, positions(hidden_ids), positions(i for i, c in marks.items() if c.state == LATER),
                        hidden_ids, marks)
