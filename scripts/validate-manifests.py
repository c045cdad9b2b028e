#!/usr/bin/env python3
"""Checks every manifest under deploy/ (bar deploy/schemas/) offline, against the
published schemas in deploy/schemas/ (sources and licences: scripts/vendor-schemas.py):
Kubernetes kinds against Kubernetes 1.35's strict JSON Schemas, Istio kinds against
the CRD schemas of Istio 1.30.3, read strictly as the API server does with
`kubectl apply --validate=strict` (a field the schema does not name is an error,
except where the CRD keeps unknown fields, as in a WasmPlugin's pluginConfig).
Istio's CEL rules (x-kubernetes-validations) are not evaluated.

Then the pod's own rules (docs/deployment.md): only istio-proxy and the control
plane mount the channel's volume, and every container states its requests.

Last, known-bad variants of the manifests must each be refused, so a schema that
lets anything through fails the run instead of passing it.

Run by e2e/tests/mesh_manifests.rs (`make test`); needs jsonschema and PyYAML.
Exit status 0 when everything holds; prints one line per document and a total.
"""

import copy
import json
import pathlib
import sys

import jsonschema
import referencing
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"
KUBERNETES = SCHEMAS / "kubernetes-1.35.0"
ISTIO = SCHEMAS / "istio-1.30.3"

# (apiVersion, kind) → schema file.
KUBERNETES_KINDS = {
    ("v1", "Namespace"): "namespace-v1.json",
    ("v1", "ServiceAccount"): "serviceaccount-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
}
ISTIO_KINDS = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): "wasmplugin-extensions-v1alpha1.json",
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): "envoyfilter-networking-v1alpha3.json",
    ("networking.istio.io/v1", "ServiceEntry"): "serviceentry-networking-v1.json",
    ("networking.istio.io/v1", "DestinationRule"): "destinationrule-networking-v1.json",
    ("networking.istio.io/v1", "Sidecar"): "sidecar-networking-v1.json",
}

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# The containers that may mount the channel's volume (docs/security.md).
CHANNEL_VOLUME = "kalguard-channel"
CHANNEL_CONTAINERS = {"istio-proxy", "kalguard"}


def strict_openapi(schema):
    """A CRD's OpenAPI v3 schema as JSON Schema, read as the API server does:
    `nullable` admits null, int-or-string admits both, and an object with named
    properties and no rule for the rest admits no other field."""
    if isinstance(schema, list):
        return [strict_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_openapi(value) for key, value in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_validators():
    definitions = json.loads((KUBERNETES / "_definitions.json").read_text())
    registry = referencing.Registry().with_resource(
        definitions["$id"], referencing.Resource.from_contents(definitions)
    )
    validators = {}
    for key, name in KUBERNETES_KINDS.items():
        schema = json.loads((KUBERNETES / name).read_text())
        validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    for key, name in ISTIO_KINDS.items():
        schema = strict_openapi(json.loads((ISTIO / name).read_text()))
        # The CRD schema covers spec and status; the API server adds these.
        schema["properties"]["apiVersion"] = {"const": key[0]}
        schema["properties"]["kind"] = {"const": key[1]}
        schema["properties"]["metadata"] = {"$ref": f"{definitions['$id']}#/$defs/{OBJECT_META}"}
        validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators


def manifests():
    """Every document of every YAML file under deploy/ but the schemas."""
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if SCHEMAS in path.parents:
            continue
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document is not None:
                yield f"{path.relative_to(ROOT)}#{index}", document


def schema_errors(validators, document):
    key = (document.get("apiVersion"), document.get("kind"))
    validator = validators.get(key)
    if validator is None:
        return [f"no schema for apiVersion {key[0]} kind {key[1]}"]
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def pod_errors(document):
    """The pod's own rules, for a Deployment."""
    if document.get("kind") != "Deployment":
        return []
    errors = []
    pod = document["spec"]["template"]["spec"]
    for container in pod.get("containers", []):
        name = container["name"]
        mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
        if CHANNEL_VOLUME in mounts and name not in CHANNEL_CONTAINERS:
            errors.append(f"container {name} mounts {CHANNEL_VOLUME}: only {sorted(CHANNEL_CONTAINERS)} may")
        if name in CHANNEL_CONTAINERS and CHANNEL_VOLUME not in mounts:
            errors.append(f"container {name} does not mount {CHANNEL_VOLUME}")
        # istio-proxy's requests come from the sidecar.istio.io annotations.
        if name != "istio-proxy" and not container.get("resources", {}).get("requests"):
            errors.append(f"container {name} states no resource requests")
    return errors


def errors_of(validators, document):
    return schema_errors(validators, document) + pod_errors(document)


def bad_variants(documents):
    """(what, document) pairs that must be refused: one per rule above."""
    by_kind = {}
    for _, document in documents:
        by_kind.setdefault(document["kind"], document)

    def variant(kind, change):
        document = copy.deepcopy(by_kind[kind])
        change(document)
        return document

    def agent(document):
        return document["spec"]["template"]["spec"]["containers"][0]

    return [
        ("a WasmPlugin failStrategy Istio does not know",
         variant("WasmPlugin", lambda d: d["spec"].update(failStrategy="FAIL_SOMETIMES"))),
        ("a field the WasmPlugin does not have",
         variant("WasmPlugin", lambda d: d["spec"].update(pluginConfiguration={}))),
        ("a DestinationRule TLS mode Istio does not know",
         variant("DestinationRule",
                 lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="SIMPLEX"))),
        ("an EnvoyFilter patch on an unknown target",
         variant("EnvoyFilter", lambda d: d["spec"]["configPatches"][0].update(applyTo="CLUSTERS"))),
        ("a ServiceEntry without hosts", variant("ServiceEntry", lambda d: d["spec"].pop("hosts"))),
        ("a misspelt container field",
         variant("Deployment", lambda d: agent(d).update(volumeMount=[]))),
        ("a probe of the wrong type",
         variant("Deployment",
                 lambda d: d["spec"]["template"]["spec"]["containers"][1]["livenessProbe"].update(periodSeconds="10s"))),
        ("a Secret with an unknown field", variant("Secret", lambda d: d.update(strigData={}))),
        ("the agent's container mounting the channel's volume",
         variant("Deployment",
                 lambda d: agent(d).setdefault("volumeMounts", []).append(
                     {"name": CHANNEL_VOLUME, "mountPath": "/run/kalguard"}))),
        ("the agent's container without requests",
         variant("Deployment", lambda d: agent(d).pop("resources"))),
    ]


def main():
    validators = load_validators()
    documents = list(manifests())
    passed = failed = 0
    for where, document in documents:
        errors = errors_of(validators, document)
        if errors:
            failed += 1
            print(f"FAIL {where} ({document.get('kind')}):")
            for error in errors:
                print(f"     {error}")
        else:
            passed += 1
            print(f"ok   {where} ({document['apiVersion']} {document['kind']} {document['metadata']['name']})")
    for what, document in bad_variants(documents):
        if errors_of(validators, document):
            passed += 1
            print(f"ok   refused: {what}")
        else:
            failed += 1
            print(f"FAIL accepted: {what}")
    print(f"manifests: {passed} passed, {failed} failed")
    return 1 if failed or not documents else 0


if __name__ == "__main__":
    sys.exit(main())
