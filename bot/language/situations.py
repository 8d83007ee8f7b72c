"""The situations a rule tells apart, and the authorities that decide: words that make one case another.

A fee for an adult is not a minor's, a lost card is not a stolen one, a first request is not a renewal, the town
hall is not the prefecture. Training perturbs statements and questions with these pairs (``training.perturbations``)
so that the verifier learns that changing one of them changes what is said.

>>> ("majeur", "mineur") in OPPOSED_CASES
True
"""

from __future__ import annotations

# Pairs of words or phrases, as written in the documents and in residents' questions; each side replaces the other.
OPPOSED_CASES: tuple[tuple[str, str], ...] = (
    ("majeur", "mineur"),
    ("majeure", "mineure"),
    ("adulte", "enfant"),
    ("première demande", "renouvellement"),
    ("perdu", "volé"),
    ("perdue", "volée"),
    ("perte", "vol"),
    ("en France", "à l'étranger"),
    ("français", "étranger"),
    ("française", "étrangère"),
    ("propriétaire", "locataire"),
    ("marié", "pacsé"),
    ("mariage", "Pacs"),
    ("naissance", "décès"),
    ("gratuit", "payant"),
    ("gratuite", "payante"),
    ("obligatoire", "facultatif"),
    ("obligatoire", "interdit"),
    ("autorisé", "interdit"),
    ("avant", "après"),
    ("moins de", "plus de"),
    ("au plus", "au moins"),
    ("maximum", "minimum"),
    ("habitant de la commune", "personne extérieure à la commune"),
    ("particulier", "professionnel"),
    ("salarié", "indépendant"),
    ("matin", "après-midi"),
    ("semaine", "week-end"),
    ("en ligne", "sur place"),
    ("par courrier", "en personne"),
)
# Who decides or receives a request: naming the wrong one sends the resident to the wrong desk.
AUTHORITIES: tuple[str, ...] = (
    "la mairie",
    "la préfecture",
    "le tribunal judiciaire",
    "le notaire",
    "le consulat",
    "la CAF",
    "le commissariat",
    "la gendarmerie",
    "le service des impôts",
    "l'ANTS",
)
