"""A self-contained HTML report for town staff, in French: summary first, then categories, then failures."""

from __future__ import annotations

import html
import json
from pathlib import Path

from eval.runner import load_results

LABELS = {
    "handled_right": "Questions bien traitées",
    "answer_accuracy": "Réponses justes (questions avec réponse)",
    "refusal_accuracy": "Refus justes (questions sans réponse)",
    "wrong_refusal_rate": "Refus à tort",
    "invented_facts": "Chiffres ou contacts inventés",
    "citation_validity": "Citations valides",
    "hit_at_k": "Bon document trouvé (10 premiers)",
    "mrr": "Rang moyen du bon document (MRR)",
    "latency_p50_s": "Temps de réponse médian (s)",
    "latency_p95_s": "Temps de réponse 95e centile (s)",
    "prompt_tokens_mean": "Jetons de prompt par réponse",
    "completion_tokens_mean": "Jetons générés par réponse",
    "cpu_s_mean": "Temps processeur par réponse (s)",
    "cases": "Nombre de questions",
    "ordinary_routed_away": "Questions ordinaires écartées à tort",
    "validated_answers_served": "Réponses validées servies",
}
# How staff read each outcome in the route matrix.
OUTCOME_LABELS = {
    "answered": "réponse",
    "unanswerable_no_sources": "pas de source",
    "handoff_emergency": "urgence",
    "guardrail_injection": "manipulation",
    "refused_abusive": "propos abusifs",
    "refused_personal_data": "données d'autrui",
    "handoff_individual_decision": "décision individuelle",
    "refused_out_of_scope": "hors sujet",
    "smalltalk_greeting": "salutation",
    "error_llm": "erreur technique",
}
RATES = {
    "handled_right",
    "answer_accuracy",
    "refusal_accuracy",
    "wrong_refusal_rate",
    "citation_validity",
    "hit_at_k",
    "ordinary_routed_away",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:2px solid #000091}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#eef}
.ok{color:#18753c;font-weight:bold}.ko{color:#ce0500;font-weight:bold}.bar{fill:#000091}.bg{fill:#e5e5f4}
details{margin:.5rem 0 1rem}blockquote{margin:.3rem 0;padding:.3rem .6rem;border-left:4px solid #000091;
background:#f6f6f6;white-space:pre-wrap}.case{border:1px solid #ccc;padding:.6rem 1rem;margin:1rem 0}
"""


def _fmt(key: str, value) -> str:
    if value is None:
        return "—"
    if key in RATES:
        return f"{value * 100:.1f} %"
    return f"{value}"


def _bar(rate: float | None) -> str:
    """An inline SVG bar for a rate between 0 and 1 (no script, no external asset)."""
    width = round(200 * (rate or 0))
    return (
        f'<svg width="210" height="14" role="img" aria-label="{_fmt("handled_right", rate)}">'
        f'<rect class="bg" width="200" height="14"/><rect class="bar" width="{width}" height="14"/></svg>'
    )


def render(summary: dict, results: list[dict], failures: list[str]) -> str:
    """The whole report as one HTML string."""
    esc = html.escape
    verdict = (
        f'<p class="ko">Seuils de mise en production non atteints : {esc("; ".join(failures))}</p>'
        if failures
        else '<p class="ok">Seuils de mise en production atteints.</p>'
    )
    rows = "".join(
        f"<tr><th scope=row>{esc(LABELS.get(k, k))}</th><td>{esc(_fmt(k, v))}</td></tr>"
        for k, v in summary.items()
        if k in LABELS
    )
    categories = "".join(
        f"<tr><th scope=row>{esc(name)}</th><td>{m['cases']}</td><td>{_fmt('handled_right', m['handled_right'])}"
        f" {_bar(m['handled_right'])}</td><td>{_fmt('answer_accuracy', m['answer_accuracy'])}</td>"
        f"<td>{_fmt('refusal_accuracy', m['refusal_accuracy'])}</td><td>{m['invented_facts']}</td></tr>"
        for name, m in summary.get("by_category", {}).items()
    )
    # Ordinary questions a route turned away come first: they are the failures residents feel most.
    failed = sorted((r for r in results if not r["passed"]), key=lambda r: not (r.get("ordinary") and r.get("routed")))
    cases = "".join(_case(r) for r in failed) or "<p>Aucune question en échec.</p>"
    run = summary.get("run", {})
    meta = (
        f"Prompt {esc(str(run.get('prompt_version')))}, seuils {esc(str(run.get('thresholds_version')))}, "
        f"modèle {esc(str(run.get('llm')))}, index de {esc(str(run.get('index', {}).get('chunk_count')))} "
        f"passages, le {esc(str(run.get('finished_at')))}."
    )
    return f"""<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>Évaluation de l'assistant</title><style>{STYLE}</style></head><body>
<h1>Évaluation de l'assistant de la mairie</h1>{verdict}<p>{meta}</p>
<h2>Résumé</h2><table>{rows}</table>
<h2>Par catégorie</h2><table><tr><th scope=col>Catégorie</th><th scope=col>Questions</th>
<th scope=col>Bien traitées</th><th scope=col>Réponses justes</th><th scope=col>Refus justes</th>
<th scope=col>Inventions</th></tr>{categories}</table>
{_route_matrix(summary.get("routes", {}), results)}
<h2>Questions en échec ({len(failed)})</h2>{cases}</body></html>"""


def _route_matrix(matrix: dict[str, dict[str, int]], results: list[dict]) -> str:
    """Expected outcome (rows) against the outcome given (columns): where the questions went."""
    if not matrix:
        return ""
    esc = html.escape
    actuals = sorted({actual for row in matrix.values() for actual in row})
    head = "".join(f"<th scope=col>{esc(OUTCOME_LABELS.get(a, a))}</th>" for a in actuals)
    body = "".join(
        f"<tr><th scope=row>{esc(OUTCOME_LABELS.get(expected, expected))}</th>"
        + "".join(f"<td>{row.get(a, '') or ''}</td>" for a in actuals)
        + "</tr>"
        for expected, row in matrix.items()
    )
    turned_away = [r for r in results if r.get("ordinary") and r.get("routed")]
    listed = "".join(
        f"<li>{esc(r['id'])} : {esc(r['question'])} → {esc(OUTCOME_LABELS.get(r['outcome'], r['outcome']))}</li>"
        for r in turned_away
    )
    return (
        "<h2>Parcours des questions</h2><p>Lignes : ce qui était attendu ; colonnes : ce que l'assistant a fait.</p>"
        f"<table><tr><th scope=col>Attendu</th>{head}</tr>{body}</table>"
        f"<h3>Questions ordinaires écartées à tort ({len(turned_away)})</h3>"
        + (f"<ul>{listed}</ul>" if listed else "<p>Aucune.</p>")
    )


def _case(r: dict) -> str:
    esc = html.escape
    expected = "; ".join(" ou ".join(m) if isinstance(m, list) else m for m in r.get("expected", [])) or "—"
    kind = "une réponse" if r["kind"] == "answer" else "un refus"
    passages = "".join(
        f"<blockquote>[{esc(p['label'])}] {esc(p['source'])} — {esc(' > '.join(p['headings']))}"
        f"\n{esc(p['text'])}</blockquote>"
        for p in r.get("passages", [])
    )
    return (
        f'<div class="case"><p><strong>{esc(r["id"])}</strong> ({esc(r["category"])}) — attendu : {kind}'
        f"</p><p><strong>Question :</strong> {esc(r['question'])}</p><p><strong>Réponse ({esc(r['outcome'])})"
        f" :</strong> {esc(r['answer'])}</p><p><strong>Éléments attendus :</strong> {esc(expected)}</p>"
        f"<p class=ko>{esc(r['why'])}</p><details><summary>Passages consultés</summary>{passages}"
        "</details></div>"
    )


def write(out_dir: Path, failures: list[str]) -> Path:
    """Render ``report.html`` from the run's ``summary.json`` and ``results.jsonl``."""
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    results = load_results(out_dir)
    path = out_dir / "report.html"
    path.write_text(render(summary, results, failures), encoding="utf-8")
    return path
