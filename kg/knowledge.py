"""The ontology, read once into an immutable, indexed form the engine uses.

Everything clinical the engine knows (terms, short names, units, reference
ranges, causal edges, criteria) is read from the Turtle files under
``ontology/``; nothing here repeats a threshold, a label or an edge.  The
compiled form is cached on disk, keyed by a hash of the ontology files, so a
cold ``mas-kg explain`` does not re-parse Turtle.

>>> kb = load_knowledge()
>>> kb.resolve_code("Ferritin").notation, kb.resolve_code("LOINC:2276-4").notation
('ferritin', 'ferritin')
>>> kb.terms["mkg:Hyperferritinemia"].xrefs[0]
'HP:0003281'
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping

from .errors import OntologyError
from .units import MolarFactor

__all__ = [
    "Term", "LabTest", "ReferenceRange", "ThresholdRule", "CausalEdge", "CriterionItem",
    "CriteriaSet", "Band", "PretestDefault", "CandidateCategory", "Effect", "EvidenceRule", "Indication",
    "TrendPart", "AlertRule", "KnowledgeBase", "compact", "expand", "load_knowledge", "ontology_dir", "ontology_files",
]

MKG = "https://w3id.org/mas-kg/"
OBO = "http://purl.obolibrary.org/obo/"
_CACHE_VERSION = "8"


def compact(iri: str) -> str:
    """Shorten an IRI to a CURIE (mkg:, crit:, OBO prefixes, LOINC).

    >>> compact("http://purl.obolibrary.org/obo/HP_0003281"), compact("https://w3id.org/mas-kg/IL6")
    ('HP:0003281', 'mkg:IL6')
    """
    if iri.startswith(MKG + "criteria/"):
        return "crit:" + iri[len(MKG) + 9:]
    if iri.startswith(MKG):
        return "mkg:" + iri[len(MKG):]
    if iri.startswith(OBO):
        local = iri[len(OBO):]
        prefix, _, rest = local.partition("_")
        return f"{prefix}:{rest}" if rest else iri
    if iri.startswith("https://loinc.org/"):
        return "LOINC:" + iri[len("https://loinc.org/"):].strip("/")
    return iri


def expand(curie: str) -> str:
    """The IRI of a CURIE :func:`compact` wrote (its inverse).

    >>> expand("HP:0003281"), expand("mkg:IL6"), expand(compact("https://w3id.org/mas-kg/criteria/hscore"))
    ('http://purl.obolibrary.org/obo/HP_0003281', 'https://w3id.org/mas-kg/IL6', 'https://w3id.org/mas-kg/criteria/hscore')
    """
    if curie.startswith(("http://", "https://")):
        return curie
    prefix, _, rest = curie.partition(":")
    if prefix == "mkg":
        return MKG + rest
    if prefix == "crit":
        return MKG + "criteria/" + rest
    if prefix == "LOINC":
        return "https://loinc.org/" + rest
    return f"{OBO}{prefix}_{rest}"


@dataclass(frozen=True, slots=True)
class Term:
    """A class of the ontology with what reports and lookups need."""

    id: str
    label: str
    kind: str
    definition: str
    definition_source: str
    notation: str | None = None
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = ()
    exact_matches: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    root_cause: bool = False
    candidate_category: str | None = None
    agent: str | None = None
    accepts_value_unit: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceRange:
    min_age_years: Fraction
    max_age_years: Fraction
    sex: str | None
    low: Fraction | None
    high: Fraction | None
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """``value comparator threshold`` on a lab test, in the published unit."""

    analyte: str
    comparator: str
    threshold: Fraction
    unit: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class LabTest:
    id: str
    notation: str
    label: str
    canonical_unit: str
    quantity_kind: str
    measures: str
    loinc: tuple[str, ...]
    high_sign: str | None
    low_sign: str | None
    molar: MolarFactor | None
    kept_unconvertible_kind: str | None
    reference_ranges: tuple[ReferenceRange, ...]
    high_rule: ThresholdRule | None  # e.g. temperature >= 38.0 Cel is fever
    plausible_max: Fraction | None = None  # in canonical_unit: above it a value is an error (mkg:plausibleMaximum)


@dataclass(frozen=True, slots=True)
class CausalEdge:
    subject: str
    relation: str
    relation_label: str
    object: str
    sign: int
    sources: tuple[str, ...]
    knowledge_level: str
    comment: str


@dataclass(frozen=True, slots=True)
class Band:
    """A points band: the item scores at least ``points`` when ``value comparator threshold``."""

    comparator: str
    threshold: Fraction
    points: Fraction


@dataclass(frozen=True, slots=True)
class CriterionItem:
    """One item of a criteria set, as held in the ontology (see core.ttl, section Criteria).

    Kinds: a compound item (``combination``: all, any, at-least, count-points,
    sum, linear, ratio), a threshold item (``analyte`` with ``comparator`` and
    ``threshold``), a points item (``analyte`` or ``attribute`` with ``bands``;
    a finding with ``points``), a formula operand (``coefficient``, or the
    numerator/denominator of a ratio) and a finding item (``finding``, with
    an optional size rule in ``comparator``/``threshold``/``unit``).
    """

    id: str
    label: str
    order: int
    combination: str | None = None  # all | any | at-least | count-points | sum | linear | ratio
    min_count: int | None = None
    parts: tuple[str, ...] = ()
    analyte: str | None = None
    comparator: str | None = None
    threshold: Fraction | None = None
    unit: str | None = None
    age_threshold: tuple[Fraction, Fraction] | None = None  # (max age in days, threshold)
    finding: str | None = None
    sites: tuple[str, ...] = ()
    note: str = ""
    points: Fraction | None = None  # a finding item's points when met
    bands: tuple[Band, ...] = ()
    coefficient: Fraction | None = None
    attribute: str | None = None  # "age"
    measured_rule: ThresholdRule | None = None
    absent_finding: str | None = None
    numerator: str | None = None
    denominator: str | None = None

    @property
    def is_points(self) -> bool:
        return bool(self.bands) or self.points is not None

    @property
    def input_name(self) -> str | None:
        """The term (or attribute) whose value this leaf item reads."""
        return self.analyte or self.finding or self.attribute


@dataclass(frozen=True, slots=True)
class PretestDefault:
    probability: Fraction
    context: str | None  # a condition the patient must have; None = any patient
    source: str
    comment: str


@dataclass(frozen=True, slots=True)
class CriteriaSet:
    id: str
    iri: str
    label: str
    definition: str
    citation: str
    sources: tuple[str, ...]
    population: tuple[str, ...]
    population_note: str
    rule: str
    scored_items: tuple[str, ...]
    items: Mapping[str, CriterionItem]
    sensitivity: Fraction | None
    specificity: Fraction | None
    performance_note: str
    decision_note: str
    probability_table: tuple[tuple[Fraction, Fraction], ...] = ()  # (score, probability), ascending
    probability_labels: tuple[str, str] = ("", "")  # below / above the table
    pretest_defaults: tuple[PretestDefault, ...] = ()
    order: int = 0
    short_label: str = ""  # for one-line outputs (a CDS card summary)
    alert_tier: str = "none"  # critical | warning | none: how alerting outputs surface a met verdict


@dataclass(frozen=True, slots=True)
class CandidateCategory:
    """A candidate syndrome of the report (DESIGN.md section 4): its category and class."""

    category: str  # mas | primary_hlh | infection_hlh | malignancy_hlh | disease_flare | sepsis_dic
    term: str
    order: int
    short_label: str = ""


@dataclass(frozen=True, slots=True)
class Effect:
    candidate: str  # the candidate's class, e.g. mkg:MAS
    weight: Fraction


@dataclass(frozen=True, slots=True)
class EvidenceRule:
    """One evidence rule for ranking candidates (core.ttl, section Candidate ranking).

    ``kind`` is what the rule reads: criterion, condition, finding, gene, age,
    signature, level or alert.
    """

    id: str
    label: str
    effects: tuple[Effect, ...]
    sources: tuple[str, ...]
    comment: str
    order: int = 0
    criterion: str | None = None
    status: str | None = None
    conditions: tuple[str, ...] = ()
    finding: str | None = None
    absent: bool = False
    gene_of: str | None = None
    analyte: str | None = None  # a lab test
    direction: str | None = None  # high | low (signature)
    via: str | None = None
    one_sided: bool = False  # the opposite direction is not evidence against
    comparator: str | None = None  # level and age rules
    threshold: Fraction | None = None
    unit: str | None = None
    attribute: str | None = None
    alert: str | None = None
    max_age_years: Fraction | None = None  # the rule speaks only for patients younger than this

    @property
    def kind(self) -> str:
        """What the rule reads (from which condition it carries); "" when it carries none."""
        return ("criterion" if self.criterion else "condition" if self.conditions else "gene" if self.gene_of
                else "finding" if self.finding else "alert" if self.alert else "age" if self.attribute
                else "signature" if self.analyte and self.direction else "level" if self.analyte else "")


@dataclass(frozen=True, slots=True)
class Indication:
    """A therapy used for a candidate syndrome, with its source (information, not dosing advice)."""

    therapy: str
    candidate: str
    sources: tuple[str, ...]
    comment: str


@dataclass(frozen=True, slots=True)
class TrendPart:
    analyte: str  # a lab test
    direction: str  # rising | falling
    relative_change: Fraction


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A named alert (core.ttl, section Alerts): a discordance, a trend or a transition."""

    code: str
    label: str
    kind: str  # discordance | trend | transition
    severity: str
    definition: str
    sources: tuple[str, ...]
    setting_note: str
    order: int = 0
    high_analytes: tuple[str, ...] = ()
    not_high_analytes: tuple[str, ...] = ()
    parts: tuple[TrendPart, ...] = ()
    lookback_hours: Fraction | None = None
    earlier_high: tuple[str, ...] = ()
    any_alerts: tuple[str, ...] = ()
    all_alerts: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    """The compiled ontology.  Build it with :func:`load_knowledge`."""

    digest: str
    terms: Mapping[str, Term]
    lab_tests: Mapping[str, LabTest]
    edges: tuple[CausalEdge, ...]
    criteria: tuple[CriteriaSet, ...]
    codes: Mapping[str, str]  # lower-cased short name / CURIE -> term id
    genes_to_diseases: Mapping[str, tuple[str, ...]]
    tests_by_high_sign: Mapping[str, str]  # clinical/lab sign -> the lab test it is the high sign of
    candidates: tuple[CandidateCategory, ...]
    evidence: tuple[EvidenceRule, ...]
    indications: tuple[Indication, ...]
    alerts: tuple[AlertRule, ...]
    _ancestors: Mapping[str, frozenset[str]] = field(repr=False)

    def resolve_code(self, code: str) -> Term | None:
        """The term a patient-file code names (short name, synonym, LOINC/HP/MONDO CURIE)."""
        term_id = self.codes.get(code.strip().lower())
        return self.terms.get(term_id) if term_id else None

    def is_a(self, term_id: str, ancestor: str) -> bool:
        return ancestor == term_id or ancestor in self._ancestors.get(term_id, frozenset())

    def lab_test_for(self, term_id: str) -> LabTest | None:
        return self.lab_tests.get(term_id)

    def test_with_high_sign(self, sign: str) -> LabTest | None:
        """The lab test whose high result is ``sign`` (e.g. fever -> temperature)."""
        test_id = self.tests_by_high_sign.get(sign)
        return self.lab_tests[test_id] if test_id else None

    def criteria_set(self, criterion_id: str) -> CriteriaSet:
        for criteria_set in self.criteria:
            if criteria_set.id == criterion_id:
                return criteria_set
        raise KeyError(criterion_id)


def ontology_dir() -> Path:
    """Where the Turtle files are: $MAS_KG_ONTOLOGY, the source tree, or the installed copy."""
    env = os.environ.get("MAS_KG_ONTOLOGY")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "ontology", here / "ontology"]
    for candidate in candidates:
        if (candidate / "core.ttl").is_file():
            return candidate
    raise OntologyError("ontology directory not found (set MAS_KG_ONTOLOGY)")


def ontology_files(directory: Path | None = None) -> list[Path]:
    directory = directory or ontology_dir()
    return sorted(directory.rglob("*.ttl"))


def _digest(files: list[Path]) -> str:
    hasher = hashlib.sha256(_CACHE_VERSION.encode())
    for path in files:
        hasher.update(path.name.encode())
        hasher.update(path.read_bytes())
    return hasher.hexdigest()[:16]


def _cache_path(digest: str) -> Path | None:
    if os.environ.get("MAS_KG_NO_CACHE"):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mas-kg" / f"kb-{digest}.pickle"


_MEMO: dict[str, KnowledgeBase] = {}


def load_knowledge(directory: Path | None = None) -> KnowledgeBase:
    """Read the ontology (from the on-disk cache when its files are unchanged)."""
    files = ontology_files(directory)
    if not files:
        raise OntologyError(f"no .ttl files in {directory or ontology_dir()}")
    digest = _digest(files)
    if digest in _MEMO:
        return _MEMO[digest]
    cache = _cache_path(digest)
    if cache is not None and cache.is_file():
        try:
            with cache.open("rb") as handle:
                kb = pickle.load(handle)
            if isinstance(kb, KnowledgeBase) and kb.digest == digest:
                _MEMO[digest] = kb
                return kb
        except Exception:  # a stale or corrupt cache is rebuilt, never trusted
            pass
    from .compile import compile_graph  # rdflib is imported only when compiling

    try:
        kb = compile_graph(files, digest)
    except (ValueError, TypeError, ArithmeticError) as error:  # malformed data, e.g. a band without points
        raise OntologyError(f"cannot compile the ontology: {error}") from None
    _MEMO[digest] = kb
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                pickle.dump(kb, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cache)
        except OSError:
            pass  # read-only home: work uncached
    return kb


class FrozenDict(dict):
    """A read-only dict that pickles (MappingProxyType does not)."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("the knowledge base is immutable")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))
