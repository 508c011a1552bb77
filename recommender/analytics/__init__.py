"""Analytics for curriculum designers and evaluators: coverage and demand, teaching indicators, class
programmes and 好课程 / 好教材 nominations, with CSV/XLSX exports.

Every threshold, scope, quota, weight and gate is read from ``ontology/rules.yaml`` through
:func:`kg.ontology.load_ontology`; exact choices are made with HiGHS.  Results are plain dataclasses with
``to_dict()`` (Chinese keys for user-facing fields) for the web layer.

They read the one catalogue read model, :class:`recommender.catalogue.snapshot.CatalogueSnapshot`.

>>> from kg.store import open_store
>>> from recommender.catalogue.snapshot import load_snapshot
>>> catalogue = load_snapshot(open_store())                                     # doctest: +SKIP
>>> teaching_indicators(catalogue, "inst:central-party-school", "2025秋")         # doctest: +SKIP
>>> optimise_nominations(catalogue, NominationConfig.from_rules(year=2026))     # doctest: +SKIP
"""

from recommender.analytics.audit import NominationAudit, Swap, check_nomination_list
from recommender.analytics.coverage import CoverageReport, coverage_report, underserved_by
from recommender.analytics.errors import AnalyticsError, InputError, RuleError, SolverError
from recommender.analytics.exports import export, export_csv, export_xlsx, read_id_column
from recommender.analytics.indicators import IndicatorReport, teaching_indicators
from recommender.analytics.nominations import NominationConfig, NominationResult, optimise_nominations
from recommender.analytics.programme import ProgrammeRequest, ProgrammeResult, build_programme
from recommender.analytics.scoring import Candidate, score_candidates

__all__ = [
    "AnalyticsError",
    "Candidate",
    "CoverageReport",
    "IndicatorReport",
    "InputError",
    "NominationAudit",
    "NominationConfig",
    "NominationResult",
    "ProgrammeRequest",
    "ProgrammeResult",
    "RuleError",
    "SolverError",
    "Swap",
    "build_programme",
    "check_nomination_list",
    "coverage_report",
    "export",
    "export_csv",
    "export_xlsx",
    "optimise_nominations",
    "read_id_column",
    "score_candidates",
    "teaching_indicators",
    "underserved_by",
]
