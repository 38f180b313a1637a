"""Codes, units and flags of FHIR R4 resources, mapped onto the ontology (used by :mod:`kg.fhir`).

A Coding names an ontology term through its system: LOINC, HPO (both of its
system IRIs), MONDO, SNOMED CT (``SCTID:``), UBERON, or our own code system
``https://w3id.org/mas-kg/code`` whose codes are the short names of DESIGN.md
section 3.  OBO codes may be written as CURIEs (``HP:0001744``, as HL7 THO
does) or bare (``0001744``).

>>> from kg.knowledge import load_knowledge
>>> kb = load_knowledge()
>>> curie({"system": "http://human-phenotype-ontology.org", "code": "HP:0001744"})
'HP:0001744'
>>> resolve_codings([{"system": "http://loinc.org", "code": "9999-9"},
...                  {"system": "http://loinc.org", "code": "2276-4"}], kb)[0]
{'code': 'LOINC:2276-4'}
>>> interpretation([{"coding": [{"system": V3_INTERPRETATION, "code": "HH"}]}])
('high', [])
"""

from __future__ import annotations

from typing import Any

from .knowledge import KnowledgeBase, Term
from .units import UnitError, normalise_unit

__all__ = ["LOINC", "HPO", "HPO_OBO", "MONDO", "SNOMED", "UBERON", "UCUM", "HGNC", "OUR_CODES", "V3_INTERPRETATION",
           "REFERENCE_RANGE_MEANING", "CONDITION_DUE_TO", "GENE_STUDIED", "curie", "resolve_codings",
           "contract_code", "interpretation", "presence", "unit_of", "same_unit", "gene_of", "term_by_name"]

LOINC = "http://loinc.org"
HPO = "http://human-phenotype-ontology.org"  # HL7 THO
HPO_OBO = "http://purl.obolibrary.org/obo/hp.owl"
MONDO = "http://purl.obolibrary.org/obo/mondo.owl"
SNOMED = "http://snomed.info/sct"
UBERON = "http://purl.obolibrary.org/obo/uberon.owl"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org/geneId"
OUR_CODES = "https://w3id.org/mas-kg/code"  # codes = the short names (DESIGN.md section 3)
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
REFERENCE_RANGE_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
CONDITION_DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"
GENE_STUDIED = "48018-6"  # LOINC "Gene studied [ID]" (FHIR genomics reporting)

_PREFIX = {LOINC: "LOINC", HPO: "HP", HPO_OBO: "HP", MONDO: "MONDO", SNOMED: "SCTID", UBERON: "UBERON"}
_FLAGS = {"H": "high", "HH": "high", "HU": "high", ">": "high", "L": "low", "LL": "low", "LU": "low", "<": "low",
          "N": "normal", "A": "abnormal", "AA": "abnormal"}
_PRESENT = {(LOINC, "LA9633-4"): True, (LOINC, "LA9634-2"): False, (SNOMED, "52101004"): True,
            (SNOMED, "2667000"): False}


def curie(coding: Any) -> str | None:
    """The CURIE (or short name, for our code system) a Coding stands for; None for other systems."""
    if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
        return None
    system, code = coding.get("system"), coding["code"].strip()
    if system == OUR_CODES:
        return code
    prefix = _PREFIX.get(system) if isinstance(system, str) else None  # a malformed system (a list) is unknown
    if prefix is None:
        return None
    if prefix in ("HP", "MONDO", "UBERON"):
        local = code.replace("_", ":", 1) if code.upper().startswith(prefix + "_") else code
        return local if local.upper().startswith(prefix + ":") else f"{prefix}:{local}"
    return f"{prefix}:{code}"


def _as_given(coding: dict) -> str:
    """How an unresolved Coding is handed on, so that it is reported as an unknown code, never dropped."""
    name = curie(coding)
    if name is not None:
        return name
    return f"{coding.get('system') or '(no system)'}|{coding.get('code')}"


def term_by_name(text: str, kb: KnowledgeBase, kinds: set[str]) -> Term | None:
    """A term of one of ``kinds`` by code, synonym, label or cross-reference (case-insensitive)."""
    term = kb.resolve_code(text)
    if term is not None and term.kind in kinds:
        return term
    key = text.strip().lower()
    for term in kb.terms.values():
        if term.kind in kinds and (term.label.lower() == key or key in (x.lower() for x in term.xrefs)):
            return term
    return None


def contract_code(term: Term, kb: KnowledgeBase) -> dict[str, str] | None:
    """A contract ``code`` (with ``agent`` if needed) that :func:`kg.patient.read_patient` reads as ``term``."""
    for name in (term.notation, *term.exact_matches, *term.xrefs, *term.synonyms, term.label):
        if name and kb.resolve_code(name) is term:
            return {"code": name}
    if term.agent:  # an infection by an agent: its parent term with the agent
        for parent in term.parents:
            parent_term = kb.terms.get(parent)
            code = contract_code(parent_term, kb) if parent_term else None
            if code is not None and "agent" not in code:
                return {**code, "agent": term.agent}
    return None


def resolve_codings(codings: Any, kb: KnowledgeBase, *, kinds: set[str] | None = None,
                    names: tuple[str, ...] = ()) -> tuple[dict[str, str] | None, Term | None]:
    """The first Coding (then ``names``: displays, text) naming a term: (contract ``code`` [+ ``agent``], term).

    Without ``kinds``, only what :meth:`KnowledgeBase.resolve_code` knows; with ``kinds``, also labels and
    cross-references of terms of those kinds.  When nothing resolves: the first Coding as given
    (``LOINC:9999-9``, ``system|code``) or the first name, and None, so that it is reported, never dropped.
    """
    codings = [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []
    names = tuple(n for n in names if isinstance(n, str) and n.strip())
    candidates = [name for name in (curie(c) for c in codings) if name] + list(names)
    for name in candidates:
        term = term_by_name(name, kb, kinds) if kinds else kb.resolve_code(name)
        if term is not None:
            contract = {"code": name} if kb.resolve_code(name) is term else contract_code(term, kb)
            if contract is not None:
                return contract, term
    given = [_as_given(c) for c in codings if c.get("code")] or list(names)
    return ({"code": given[0]} if given else None), None


def interpretation(concepts: Any) -> tuple[str | None, list[str]]:
    """The contract's lab flag from ``Observation.interpretation`` and the codes it could not read."""
    ignored = []
    for concept in concepts if isinstance(concepts, list) else []:
        for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
            if not isinstance(coding, dict):  # malformed input: listed as unread, never a TypeError
                ignored.append(repr(coding)[:80])
                continue
            code = coding.get("code")
            if coding.get("system") == V3_INTERPRETATION and isinstance(code, str) and code in _FLAGS:
                return _FLAGS[code], ignored
            ignored.append(f"{coding.get('system') or '(no system)'}|{code}")
        if isinstance(concept, dict) and not concept.get("coding") and concept.get("text"):
            ignored.append(repr(concept["text"]))
    return None, ignored


def presence(concept: Any) -> bool | None:
    """Present (True) / Absent (False) from a valueCodeableConcept (LOINC LA9633-4/LA9634-2, SNOMED)."""
    for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
        key = (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else None
        value = _PRESENT.get(key) if key and all(isinstance(part, str) for part in key) else None  # lists: unhashable
        if value is not None:
            return value
    return None


def unit_of(quantity: dict) -> str | None:
    """The UCUM code when the Quantity's system is UCUM, else its printed ``unit`` (the reader normalises it)."""
    if quantity.get("system") == UCUM and quantity.get("code"):
        return quantity["code"]
    return quantity.get("unit") or quantity.get("code")


def same_unit(first: str, second: str) -> bool:
    """Two unit spellings of the same UCUM unit (compared as text when either is unknown)."""
    try:
        return normalise_unit(first) == normalise_unit(second)
    except UnitError:
        return first.strip() == second.strip()


def gene_of(components: Any, kb: KnowledgeBase) -> tuple[str | None, list[dict]]:
    """The gene symbol of a "Gene studied [ID]" component (HGNC id known to the ontology, else its
    display or text), and the other components."""
    gene, others = None, []
    for component in components if isinstance(components, list) else []:
        codings = component.get("code", {}).get("coding", []) if isinstance(component, dict) else []
        if not any(c.get("system") == LOINC and c.get("code") == GENE_STUDIED for c in codings) or gene:
            others.append(component)
            continue
        concept = component.get("valueCodeableConcept") or {}
        for coding in concept.get("coding", []):
            term = term_by_name(str(coding.get("code")), kb, {"Gene"}) if coding.get("code") else None
            gene = term.label if term else (coding.get("display") or None)
            if gene:
                break
        gene = gene or concept.get("text") or next((c.get("code") for c in concept.get("coding", [])
                                                    if c.get("code")), None)
        if gene is None:
            others.append(component)
    return gene, others
