"""Column-mapping profiles (``ontology/import_profiles.yaml``) and finding the header of a user's table.

A table exported by a platform or typed in Excel rarely starts with its header: a title row (某某干部网络学院课程
目录（2025年）) and merged group cells (课程信息 over 课程名称 / 课程编号) come first.  :func:`find_header` looks at the
first rows of a sheet, with merged cells already filled in, and picks the row, profile and class whose column
names match best; a named profile is the only one tried.  What a profile says is data: the project's own field
names and Chinese labels (read from the shapes, never restated), and profiles in the style of the national
standards and of a provincial platform's export.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kg.ontology import ONTOLOGY_DIR, Ontology

__all__ = [
    "ClassMapping",
    "HeaderMatch",
    "ImportProfiles",
    "Profile",
    "ProfileError",
    "find_header",
    "load_profiles",
    "normalise_title",
]

PROFILES_FILE = "import_profiles.yaml"
OWN_PROFILE = "ganxun"


class ProfileError(ValueError):
    """A profile was named that ``import_profiles.yaml`` does not define, or the file itself is malformed."""


def normalise_title(title: Any) -> str:
    """A column title as compared: NFKC (full-width brackets become half-width), no spaces, no trailing ``*``."""
    text = unicodedata.normalize("NFKC", "" if title is None else str(title))
    return re.sub(r"\s+", "", text).rstrip("*")


@dataclass(frozen=True)
class ClassMapping:
    """How one profile reads one class: normalised column title → field, and the per-field extras."""

    class_name: str
    columns: dict[str, str]
    sheets: tuple[str, ...] = ()
    lookup: frozenset[str] = frozenset()
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    id_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    key: str
    name: str
    description: str
    separators: re.Pattern[str]
    id_prefix: bool
    ignore: frozenset[str]
    classes: dict[str, ClassMapping]

    @property
    def display(self) -> str:
        return f"{self.name}（{self.key}）"


@dataclass(frozen=True)
class ImportProfiles:
    profiles: dict[str, Profile]
    encodings: tuple[str, ...]
    header_search_rows: int
    min_matched: int
    type_columns: frozenset[str]
    true_values: frozenset[str]
    false_values: frozenset[str]

    def get(self, key: str) -> Profile:
        """The profile called ``key`` (its key or its Chinese name)."""
        for profile in self.profiles.values():
            if key in (profile.key, profile.name):
                return profile
        raise ProfileError(f"没有名为『{key}』的导入配置，可用：{'、'.join(p.display for p in self.profiles.values())}")


@dataclass(frozen=True)
class HeaderMatch:
    """The header found in a sheet: its row (0-based), profile, class (None when a type column decides per row),
    column index → field (``type`` for the type column), and the titles no field takes."""

    profile: Profile
    class_name: str | None
    row: int
    columns: dict[int, str]
    unmapped: tuple[str, ...]
    ambiguous: tuple[str, ...] = ()


def _own_classes(ontology: Ontology) -> dict[str, ClassMapping]:
    classes = {}
    for spec in ontology.data_classes:
        columns = {"id": "id", "编号": "id"}
        for f in spec.fields.values():
            columns[normalise_title(f.name)] = f.name
            columns[normalise_title(f.label)] = f.name
        classes[spec.name] = ClassMapping(spec.name, columns, sheets=(spec.label,))
    return classes


def _class_mapping(name: str, raw: dict[str, Any], ontology: Ontology, profile: str) -> ClassMapping:
    spec = ontology.classes.get(name)
    if spec is None or spec.concept_scheme is not None:
        raise ProfileError(f"{PROFILES_FILE} 的配置『{profile}』中类『{name}』不是可导入的类")
    columns = {normalise_title(title): target for title, target in (raw.get("columns") or {}).items()}
    for target in [*columns.values(), *(raw.get("defaults") or {}), *(raw.get("lookup") or ())]:
        if target != "id" and target not in spec.fields:
            raise ProfileError(f"{PROFILES_FILE} 的配置『{profile}』把列对应到『{spec.label}』没有的字段『{target}』")
    return ClassMapping(
        name, columns, sheets=tuple(raw.get("sheets") or ()) + (spec.label,),
        lookup=frozenset(raw.get("lookup") or ()), values=dict(raw.get("values") or {}),
        defaults=dict(raw.get("defaults") or {}), id_from=tuple(raw.get("id_from") or ()),
    )


_LOADED: dict[tuple[int, Path], tuple[Ontology, ImportProfiles]] = {}


def load_profiles(ontology: Ontology, directory: Path = ONTOLOGY_DIR) -> ImportProfiles:
    """Every profile of ``import_profiles.yaml`` once per ontology object (kept alive beside it, so its id is
    never reused), checked against the shapes (a profile naming a field a class
    does not have is refused when it is loaded, not when a user's file meets it)."""
    key = (id(ontology), directory)
    if key not in _LOADED:
        _LOADED[key] = (ontology, _read_profiles(ontology, directory))
    return _LOADED[key][1]


def _read_profiles(ontology: Ontology, directory: Path) -> ImportProfiles:
    raw = yaml.safe_load((directory / PROFILES_FILE).read_text(encoding="utf-8"))
    profiles: dict[str, Profile] = {}
    for key, body in raw["profiles"].items():
        classes = _own_classes(ontology) if body.get("own_fields") else {
            name: _class_mapping(name, spec, ontology, key) for name, spec in (body.get("classes") or {}).items()}
        separators = re.compile("[" + re.escape(body.get("list_separators") or "；;|") + "]")
        profiles[key] = Profile(key, body.get("name", key), body.get("description", ""), separators,
                                bool(body.get("id_prefix")), frozenset(normalise_title(t) for t in body.get("ignore") or ()),
                                classes)
    booleans = raw.get("booleans") or {}
    return ImportProfiles(
        profiles, tuple(raw.get("encodings") or ("utf_8", "gb18030")), int(raw.get("header_search_rows", 10)),
        int(raw.get("min_matched_columns", 2)), frozenset(normalise_title(t) for t in raw.get("type_columns") or ("type",)),
        frozenset(str(v).lower() for v in booleans.get("yes_values", ())), frozenset(str(v).lower() for v in booleans.get("no_values", ())),
    )


def _candidates(profile: Profile, default_type: str | None, sheet: str | None) -> list[ClassMapping]:
    if default_type is not None:
        return [profile.classes[default_type]] if default_type in profile.classes else []
    by_sheet = [m for m in profile.classes.values() if sheet and normalise_title(sheet) in {normalise_title(s) for s in m.sheets}]
    return by_sheet or list(profile.classes.values())


def _score(titles: Sequence[str], columns: dict[str, str]) -> int:
    return sum(1 for t in titles if t in columns)


def find_header(
    rows: Sequence[Sequence[Any]],
    profiles: ImportProfiles,
    profile_key: str | None = None,
    default_type: str | None = None,
    sheet: str | None = None,
) -> HeaderMatch | None:
    """The best header among the first rows: most titles matched, then a class the sheet name or ``default_type``
    names, then the earlier row.  None when no row matches ``min_matched_columns`` titles of any candidate
    (or a single-column table's one title).  A type column lets every class of the profile be read at once."""
    chosen = [profiles.get(profile_key)] if profile_key else list(profiles.profiles.values())
    best: tuple[int, int, int, HeaderMatch] | None = None
    for p_rank, profile in enumerate(chosen):
        for r, row in enumerate(rows[: profiles.header_search_rows]):
            titles = [normalise_title(v) for v in row]
            present = [t for t in titles if t]
            if not present:
                continue
            has_type = any(t in profiles.type_columns for t in titles)
            if has_type:
                union: dict[str, str] = {}
                for mapping in profile.classes.values():
                    for title, target in mapping.columns.items():
                        union.setdefault(title, target)
                options: list[tuple[str | None, dict[str, str]]] = [(None, union)]
            else:
                options = [(m.class_name, m.columns) for m in _candidates(profile, default_type, sheet)]
            for class_name, columns in options:
                score = _score(titles, columns) + (1 if has_type else 0)
                if score < min(profiles.min_matched, len(present)):
                    continue
                columns_at = {i: ("type" if t in profiles.type_columns else columns[t])
                              for i, t in enumerate(titles) if t in columns or t in profiles.type_columns}
                unmapped = tuple(str(row[i]).strip() for i, t in enumerate(titles)
                                 if t and i not in columns_at and t not in profile.ignore)
                key = (score, -p_rank, -r)
                if best is not None and key == best[:3] and class_name is not None:
                    tied = best[3].ambiguous or (best[3].class_name,)
                    best = (*key, replace(best[3], ambiguous=(*tied, class_name)))
                elif best is None or key > best[:3]:
                    best = (*key, HeaderMatch(profile, class_name, r, columns_at, unmapped))
    return best[3] if best else None
