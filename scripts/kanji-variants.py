#!/usr/bin/env python3
"""Derives ocr-models/kanji-variants.tsv from KANJIDIC2 (Debian `kanjidic-xml`).

Only needed to regenerate the table (the derived file is in the repository, with its
licence): `apt-get install kanjidic-xml && python3 scripts/kanji-variants.py`.

A pair is a character of CP932 and one of JIS X 0208 that KANJIDIC2 cross-references as
variants (`<variant var_type="jis208">`): 濱/浜, 澤/沢, 國/国, 穗/穂 … Unihan is the wrong source for
Japanese (it maps 澤 to the Chinese 泽 and never to 沢; see TECH-NOTES).

Columns: `a`, `b`, `kind`. `old`: `a` is the rare form (outside the 2,500 most frequent
characters of KANJIDIC2's newspaper count) and `b` the common one; `peer`: both or neither
are common (坂/阪, 島/嶋…), no direction.
"""
import gzip
import re
import sys

SOURCE = "/usr/share/edict/kanjidic2.xml.gz"
OUT = sys.argv[1] if len(sys.argv) > 1 else "ocr-models/kanji-variants.tsv"

xml = gzip.open(SOURCE, "rt", encoding="utf-8").read()
date = re.search(r"<date_of_creation>(.*?)</date_of_creation>", xml)
chars = re.findall(r"<character>(.*?)</character>", xml, re.S)
freq, by_code, variants = {}, {}, {}
for c in chars:
    lit = re.search(r"<literal>(.*?)</literal>", c).group(1)
    code = re.search(r'<cp_value cp_type="jis208">(.*?)</cp_value>', c)
    f = re.search(r"<freq>(\d+)</freq>", c)
    freq[lit] = int(f.group(1)) if f else None
    if code:
        by_code[code.group(1)] = lit
    variants[lit] = re.findall(r'<variant var_type="jis208">(.*?)</variant>', c)
def cp932(ch):
    """Whether Shift_JIS as Windows writes it (what the subsidy system takes) has `ch`."""
    try:
        ch.encode("cp932")
        return True
    except UnicodeEncodeError:
        return False


pairs = set()
for lit, codes in variants.items():
    for code in codes:
        other = by_code.get(code)
        if other and other != lit and cp932(lit):
            pairs.add(tuple(sorted((lit, other))))
rows = []
for a, b in sorted(pairs):
    fa, fb = freq[a], freq[b]
    if (fa is None) != (fb is None):
        rare, common = (a, b) if fa is None else (b, a)
        rows.append((rare, common, "old"))
    else:
        rows.append((a, b, "peer"))
with open(OUT, "w", encoding="utf-8") as out:
    out.write("# Kanji variant pairs (CP932 → JIS X 0208), derived from KANJIDIC2 by scripts/kanji-variants.py\n")
    out.write(f"# (KANJIDIC2 {date.group(1) if date else ''}, Debian kanjidic-xml).\n")
    out.write("# KANJIDIC2 is the property of the Electronic Dictionary Research and Development Group,\n")
    out.write("# used in conformance with the Group's licence (Creative Commons Attribution-ShareAlike 4.0,\n")
    out.write("# https://www.edrdg.org/edrdg/licence.html); this derived table is under the same licence.\n")
    out.write("# Columns: a<TAB>b<TAB>kind. old = a is the rare (old) form of the common b; peer = no direction.\n")
    for r in rows:
        out.write("\t".join(r) + "\n")
print(f"{len(rows)} pairs → {OUT}")
