#!/usr/bin/env bash
# Installs the web client's two npm packages, Converse.js (its prebuilt dist folder) and
# playwright-core (no dependencies of its own), at the versions and with the sha512
# integrity web/package-lock.json pins, straight from the npm registry: neither needs the
# packages the lockfile lists beside them, nor an install script, so npm itself is not
# needed (Debian bookworm's npm 9.2 fails on Converse.js's workspace layout). Then it
# assembles the folder Prosody serves over HTTP:
#   build/web/index.html   web/index.html and web/config.js, the preconfigured Converse.js page
#   build/web/converse/    Converse.js's dist folder (a link into web/node_modules)
# Idempotent: packages are fetched again only when package-lock.json changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=web/node_modules/.package-lock.stamp
if ! cmp -s web/package-lock.json "$stamp" 2>/dev/null; then
	python3 - <<'PY'
import base64, hashlib, io, json, shutil, tarfile, urllib.request
from pathlib import Path

lock = json.loads(Path("web/package-lock.json").read_text())["packages"]
for name in json.loads(Path("web/package.json").read_text())["dependencies"]:
    entry = lock["node_modules/" + name]
    version, integrity = entry["version"], entry["integrity"]
    url = entry.get("resolved") or f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    print(f"web-setup: {name}@{version}", flush=True)
    data = urllib.request.urlopen(url, timeout=120).read()
    algo, want = integrity.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise SystemExit(f"web-setup: {name}@{version}: integrity mismatch ({url})")
    dest = Path("web/node_modules") / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            # Every file of an npm tarball is under package/.
            if not member.name.startswith("package/") or ".." in Path(member.name).parts:
                continue
            member.name = member.name[len("package/"):]
            if member.isfile() or member.isdir():
                tar.extract(member, dest)
PY
	cp web/package-lock.json "$stamp"
fi
mkdir -p build/web
cp web/index.html web/config.js build/web/
ln -sfn "$PWD/web/node_modules/converse.js/dist" build/web/converse
