"""The criteria as OWL 2 DL defined classes, classified by HermiT (owlready2).

DESIGN.md section 2 asks that defined classes with datatype restrictions let a
real OWL reasoner classify a patient's findings, and that HermiT and the engine
agree.  This module generates, from the compiled knowledge base's criteria data
(never from thresholds written here), an OWL 2 DL ontology of defined classes;
encodes patients; runs HermiT once per batch in a fresh ``owlready2.World``;
and reads back, per patient, criteria set and item, the status HermiT entails.
``tests/test_hermit_agreement.py`` checks that it equals the engine's on a few
hundred generated patients; ``bench/hermit_vs_engine.py`` times both.

Patients are individuals (their facts asserted) or, for large batches, record
classes (a class below the intersection of the same facts; see
:func:`encode_patients`).  For an individual linked to no other individual
both entail the same, and the test checks it.  The reason is HermiT's cost:
every class defined by a datatype restriction becomes a DL-clause whose class
disjunct HermiT tries first, so each member is a "possible instance" that
realisation confirms with a tableau over the whole ABox -- quadratic in the
batch (measured here: 8 patients 29 s, 16 patients 60 s), whereas classifying
record classes runs one small test per possible subsumer (about 0.1 s a
patient).

Three values with two classes.  Every item has two defined classes,
``.../item/<id>/met`` and ``.../item/<id>/not_met``; ``missing`` is "neither is
entailed" (the open world is exactly the completion semantics of
reference/semantics.md decision 2).  Compound items combine their parts'
classes as Kleene's logic does: all = (met: intersection of met, not met: union
of not met), any = the dual, at least k of n = (met: union over the k-subsets
of the intersection of met; not met: union over the (n-k+1)-subsets of the
intersection of not met).

How each kind of item is encoded:

- Threshold items: one functional data property per (lab test, published unit)
  pair, e.g. ``value/TriglycerideTest/mmol_L``; met = ``some p
  xsd:decimal[>= 3.0]``, not met = the complementary facet.  HLH-2004's infant
  Hb rule reads an age-in-days property (``age_years x 365.25``, an exact
  decimal): met = (infant and Hb < 100) or (older and Hb < 90) or (Hb passes
  both), so with age unknown only a value on which both thresholds agree
  decides (decision 20).
- Values are converted with :func:`kg.units.convert` (exact fractions) to each
  published unit.  Neither owlready2 nor HermiT can carry an exact non-terminating
  rational: HermiT 1.3.8 (owlready2's) throws ``IllegalArgumentException``
  comparing ``owl:rational`` literals, and owlready2 round-trips
  ``xsd:decimal`` through Python floats (``3.0000000000000000001`` comes back
  as ``3.0``).  So a value is asserted as an order-preserving decimal
  representative: itself when it is a decimal of at most 15 significant
  digits, else a short decimal with exactly the same relation (<, =, >) to
  every facet value used on that property (one always exists: facets are
  short terminating decimals).  Nothing is typed ``xsd:double``.
- A censored value (``comparator``) is asserted as membership of ``some p
  xsd:decimal[interval]`` (decision 14), never as a value.  HermiT 1.3.8 takes
  degenerate intervals such as ``[90, 90)`` for non-empty while it builds
  models, and so misses e.g. that ``some p [0, 90)`` is below ``some p [< 90]``
  (reproduced in isolation); a bound on a facet value is therefore moved into
  the adjacent gap, an inclusive one adding that point with ``hasValue``
  (:func:`_censored`), which decides exactly the same items.
- Findings: per finding, the classes "reported present" (and "present at site
  s" / "present, no site" where an item restricts sites) and "reported absent".
  The input record is complete, so a missing present report is asserted as
  the complement (a closure fact).  Decision 16, fever = reported OR measured:
  met = present or ``temperature >= 38``; not met = (reported absent or
  ``temperature < 38``) and not present and not *known* ``>= 38``.  "Known" is a
  property of the record: the lower end of the temperature record (point
  value, or a censored ``>``/``>=`` bound) is asserted on two functional
  properties (inclusive, exclusive), and ``max 0`` closes the missing ones.
  Parodi's fever uses its own measured rule (``> 38.0``, decision 18).  Organ
  sizes (decision 27) are a data property in cm on the patient.
- Points items: classes "points >= v" and "points <= u" for each band level of
  the item; met = points >= the smallest positive level, not met = points <= 0
  (decision 3).  A band item's regions are unions / intersections of facets on
  one property; HScore's temperature with no value and fever reported absent
  scores 0 (``max 0`` on the value and the fever's not-met class, decision 17).
  count-points items use at-least classes over their parts.
- Sums (HScore, MH score, ISTH DIC score): met = union over the minimal
  level combinations whose certain total reaches the cut-off of the
  intersection of "points_i >= v_i"; not met = union over the maximal
  combinations of upper levels whose total stays below it of the intersection
  of "points_i <= u_i".
- Populations: the patient is ``hasCondition some C`` for each confirmed or
  suspected condition; the ontology's own subClassOf axioms between condition
  classes (from the compiled terms) let HermiT see that an EBV infection is an
  infection.  A set is not applicable when the patient is not entailed to be in
  its population class.

Out of OWL's reach: linear formulas (``ms_score``) and ratios
(``ferritin_esr``) need arithmetic over data values, which OWL 2 datatype
restrictions cannot express and HermiT refuses as SWRL built-ins.  Their
operand items are classified (a laboratory operand is met when a value is
present, decision 7) as is their population; the formula item, every item built
on it and the set's verdict (unless not applicable) are reported as ``None``:
out of reach, and never computed in Python in HermiT's name.

>>> from kg.knowledge import load_knowledge
>>> model = build_model(load_knowledge())
>>> print(model.describe("hlh2004.tg_fibrinogen.triglycerides", "not_met"))
value/TriglycerideTest/mmol_L some decimal[< 3]
>>> print(model.describe("mas2016.rule", "met"))
item/mas2016.ferritin/met and item/mas2016.fever/met and item/mas2016.labs/met
>>> model.out_of_reach("ms_score")
('ms_score.rule', 'ms_score.score')
"""

from __future__ import annotations

from .expressions import NS, representative
from .model import OwlModel, build_model
from .patients import encode_patients, patient_facts
from .reasoning import INDIVIDUALS_UP_TO, OwlVerdict, classify, loaded_world, reason

__all__ = ["NS", "INDIVIDUALS_UP_TO", "OwlModel", "OwlVerdict", "build_model", "patient_facts", "encode_patients",
           "loaded_world", "reason", "classify", "representative"]
