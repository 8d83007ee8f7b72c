"""Regenerate the demo corpus's PDF (a tariff sheet with a real text layer) without any PDF library.

Usage: python tools/make_demo_pdf.py  →  corpora/demo/tarifs-cantine-periscolaire-2026-2027.pdf
"""

from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "corpora/demo/tarifs-cantine-periscolaire-2026-2027.pdf"
TITLE = "Tarifs de la restauration scolaire et du périscolaire 2026-2027"
LINES = [
    ("H", "Commune de Valbourg-sur-Loire - Service enfance-jeunesse"),
    ("H", TITLE),
    (
        "T",
        "Délibération du conseil municipal du 12 juin 2026. Tarifs applicables du 1er septembre 2026 au 31 août 2027.",
    ),
    (
        "T",
        "Les tarifs dépendent du quotient familial (QF) de la CAF. "
        "Sans justificatif, le tarif de la tranche 4 s'applique.",
    ),
    ("H", "Restauration scolaire (prix d'un repas)"),
    ("T", "Tranche 1, QF inférieur à 500 : repas 1,00 euro."),
    ("T", "Tranche 2, QF de 500 à 899 : repas 2,40 euros."),
    ("T", "Tranche 3, QF de 900 à 1 299 : repas 3,60 euros."),
    ("T", "Tranche 4, QF de 1 300 et plus : repas 4,50 euros."),
    ("T", "Repas adulte (enseignant, personnel) : 6,20 euros."),
    ("H", "Accueil périscolaire (matin 7 h 30 - 8 h 20, soir 16 h 30 - 18 h 30)"),
    ("T", "Tranche 1 : matin 0,80 euro, soir 1,20 euro."),
    ("T", "Tranche 2 : matin 1,10 euro, soir 1,80 euro."),
    ("T", "Tranche 3 : matin 1,40 euro, soir 2,30 euros."),
    ("T", "Tranche 4 : matin 1,70 euro, soir 2,80 euros."),
    ("T", "Un retard après 18 h 30 est facturé 10 euros par quart d'heure."),
    ("H", "Inscription et paiement"),
    (
        "T",
        "L'inscription à la cantine et au périscolaire se fait sur le portail famille ou au service enfance-jeunesse.",
    ),
    ("T", "Les repas sont réservés au plus tard le jeudi pour la semaine suivante. Les factures sont mensuelles."),
    ("T", "Un repas non décommandé 48 heures à l'avance est facturé, sauf maladie avec certificat médical."),
]


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def build(lines=LINES) -> bytes:
    """The PDF bytes; ``lines`` are (kind, text) with kind "H" (heading) or "T" (text)."""
    ops, y = [b"BT"], 800
    for kind, text in lines:
        size = 13 if kind == "H" else 10
        y -= 26 if kind == "H" else 16
        font = b"/F2" if kind == "H" else b"/F1"
        ops.append(font + b" %d Tf 1 0 0 1 50 %d Tm (" % (size, y) + _escape(text) + b") Tj")
    ops.append(b"ET")
    stream = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title (" + _escape(TITLE) + b") /ModDate (D:20260612000000) /Producer (Guichet demo) >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


if __name__ == "__main__":
    TARGET.write_bytes(build())
    print(TARGET)
