#!/usr/bin/python3
"""Every YAML file under docker/ and deploy/ parses, and says what it must.

- Every file parses (yaml.safe_load_all).
- Compose files: each service has an image or a build; the named volumes, secrets and
  depends_on services it refers to are defined; a worker service has a healthcheck and a
  stop_grace_period longer than its --drain-timeout.
- Kubernetes objects: apiVersion, kind, metadata.name, and each kind's required fields
  (Deployment: selector matching the template's labels, containers with name and image,
  volume mounts naming the pod's volumes, $(VARS) in args defined in env; Service: ports,
  selector matching a Deployment; PersistentVolumeClaim: accessModes and a storage request,
  and the claim a Deployment mounts is defined; PodDisruptionBudget: selector and one of
  minAvailable/maxUnavailable; Secret: data, stringData or type; HorizontalPodAutoscaler:
  scaleTargetRef naming a Deployment here, minReplicas <= maxReplicas, metrics). The worker
  Deployment has readiness and liveness probes, resources, and a grace period longer than its
  --drain-timeout. A kustomization's resources exist, and list no HorizontalPodAutoscaler (the
  HPA is a recipe that needs prometheus-adapter); where kubectl is installed, `kubectl
  kustomize` builds it.

Usage: check_yaml.py --root SOURCE_DIR
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import yaml

problems = []
root = "."  # the source directory: paths in messages are relative to it


def problem(path, what):
    problems.append(f"{path}: {what}")


def get(obj, dotted, default=None):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def seconds(text):
    """A duration as testfarm, Compose and systemd write it: 25s, 500ms, 2m, 1h, 30."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def flag_value(argv, flag):
    argv = [str(a) for a in argv or []]
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def testfarm_argv(command):
    """The testfarm arguments of a compose command / k8s args (a list or a string)."""
    if isinstance(command, str):
        return command.split()
    return [str(c) for c in command or []]


def check_compose(path, doc):
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        problem(path, "no services")
        return
    volumes = doc.get("volumes") or {}
    secrets = doc.get("secrets") or {}
    for name, svc in services.items():
        where = f"service {name}"
        if not isinstance(svc, dict):
            problem(path, f"{where}: not a mapping")
            continue
        if "image" not in svc and "build" not in svc:
            problem(path, f"{where}: neither image nor build")
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                source = v.split(":", 1)[0] if ":" in v else None
                is_named = source and not source.startswith(("/", ".", "~", "$"))
            else:
                source = v.get("source")
                is_named = v.get("type", "volume") == "volume" and source
            if is_named and source not in volumes:
                problem(path, f"{where}: volume '{source}' is not defined under volumes:")
        for s in svc.get("secrets") or []:
            source = s if isinstance(s, str) else s.get("source")
            if source not in secrets:
                problem(path, f"{where}: secret '{source}' is not defined under secrets:")
        depends = svc.get("depends_on") or []
        for d in depends if isinstance(depends, list) else depends.keys():
            if d not in services:
                problem(path, f"{where}: depends_on '{d}', which is not a service")
        argv = testfarm_argv(svc.get("command"))
        if argv[:1] == ["worker"]:
            if not get(svc, "healthcheck.test"):
                problem(path, f"{where}: a worker without a healthcheck")
            drain = seconds(flag_value(argv, "--drain-timeout") or "25s")
            grace = seconds(svc.get("stop_grace_period", "10s"))
            if grace is None or grace <= drain:
                problem(path, f"{where}: stop_grace_period {svc.get('stop_grace_period', '10s')} "
                              f"is not longer than the worker's drain ({drain:g}s)")
    print(f"{path}: compose, {len(services)} services")


def labels_match(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def check_pod(path, where, pod):
    containers = pod.get("containers")
    if not containers:
        problem(path, f"{where}: no containers")
        return []
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for c in containers:
        if not c.get("name") or not c.get("image"):
            problem(path, f"{where}: a container without name or image")
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                problem(path, f"{where}: container {c.get('name')} mounts undefined volume "
                              f"'{m.get('name')}'")
        env = {e.get("name") for e in c.get("env") or []}
        for arg in [str(a) for a in (c.get("args") or []) + (c.get("command") or [])]:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                if var not in env:
                    problem(path, f"{where}: container {c.get('name')} uses $({var}), "
                                  "not defined in its env")
    return containers


def check_k8s(path, doc, objects):
    kind = doc.get("kind")
    where = f"{kind} {get(doc, 'metadata.name')}"
    if kind == "Kustomization":
        for r in doc.get("resources") or []:
            target = os.path.join(root, os.path.dirname(path), r)
            if not os.path.exists(target):
                problem(path, f"resource {r} does not exist")
        return
    for field in ("apiVersion", "kind", "metadata.name"):
        if not get(doc, field):
            problem(path, f"{where}: no {field}")
    spec = doc.get("spec") or {}
    if kind == "Deployment":
        selector = get(spec, "selector.matchLabels")
        if not selector:
            problem(path, f"{where}: no spec.selector.matchLabels")
        if not labels_match(selector, get(spec, "template.metadata.labels")):
            problem(path, f"{where}: spec.selector does not match the template's labels")
        containers = check_pod(path, where, get(spec, "template.spec") or {})
        args = [str(a) for c in containers for a in c.get("args") or []]
        if args[:1] == ["worker"]:
            check_worker(path, where, spec, containers[0], args)
    elif kind == "Service":
        ports = spec.get("ports")
        if not ports or not all(p.get("port") for p in ports):
            problem(path, f"{where}: spec.ports missing or without port")
    elif kind == "PersistentVolumeClaim":
        if not spec.get("accessModes"):
            problem(path, f"{where}: no spec.accessModes")
        if not get(spec, "resources.requests.storage"):
            problem(path, f"{where}: no spec.resources.requests.storage")
    elif kind == "PodDisruptionBudget":
        if not get(spec, "selector.matchLabels"):
            problem(path, f"{where}: no spec.selector.matchLabels")
        if ("minAvailable" in spec) == ("maxUnavailable" in spec):
            problem(path, f"{where}: needs exactly one of minAvailable and maxUnavailable")
    elif kind == "Secret":
        if not (doc.get("data") or doc.get("stringData") or doc.get("type")):
            problem(path, f"{where}: no data, stringData or type")
    elif kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef") or {}
        if not (ref.get("kind") and ref.get("name") and ref.get("apiVersion")):
            problem(path, f"{where}: scaleTargetRef needs apiVersion, kind and name")
        lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
        if not isinstance(hi, int) or not isinstance(lo, int) or lo < 1 or lo > hi:
            problem(path, f"{where}: minReplicas/maxReplicas missing or inverted")
        if not spec.get("metrics"):
            problem(path, f"{where}: no metrics")
    objects.append((path, doc))


def check_worker(path, where, spec, container, args):
    pod = get(spec, "template.spec") or {}
    for probe in ("readinessProbe", "livenessProbe"):
        if not container.get(probe):
            problem(path, f"{where}: the worker has no {probe}")
    if not get(container, "resources.requests") or not get(container, "resources.limits"):
        problem(path, f"{where}: the worker has no resource requests and limits")
    drain = seconds(flag_value(args, "--drain-timeout") or "25s")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= drain:
        problem(path, f"{where}: terminationGracePeriodSeconds {grace} is not longer than "
                      f"the worker's drain ({drain:g}s)")
    slots = flag_value(args, "--slots")
    if slots and slots.startswith("$("):
        var = slots[2:-1]
        ref = [e for e in container.get("env") or [] if e.get("name") == var]
        if not ref or get(ref[0], "valueFrom.resourceFieldRef.resource") != "limits.cpu":
            problem(path, f"{where}: --slots {slots} does not come from limits.cpu")


def cross_check(objects):
    deployments = [d for _, d in objects if d.get("kind") == "Deployment"]
    templates = [get(d, "spec.template.metadata.labels") for d in deployments]
    names = {get(d, "metadata.name") for d in deployments}
    claims = {get(d, "metadata.name") for _, d in objects if d.get("kind") == "PersistentVolumeClaim"}
    namespaces = {get(d, "metadata.name") for _, d in objects if d.get("kind") == "Namespace"}
    for path, d in objects:
        kind, name = d.get("kind"), get(d, "metadata.name")
        ns = get(d, "metadata.namespace")
        if kind != "Namespace" and namespaces and ns not in namespaces:
            problem(path, f"{kind} {name}: namespace {ns} is not the Namespace defined here")
        if kind == "Service":
            if not any(labels_match(get(d, "spec.selector"), t) for t in templates):
                problem(path, f"Service {name}: its selector matches no Deployment's pods")
        if kind == "PodDisruptionBudget":
            if not any(labels_match(get(d, "spec.selector.matchLabels"), t) for t in templates):
                problem(path, f"PodDisruptionBudget {name}: its selector matches no Deployment")
        if kind == "HorizontalPodAutoscaler":
            if get(d, "spec.scaleTargetRef.name") not in names:
                problem(path, f"HorizontalPodAutoscaler {name}: scales no Deployment defined here")
        if kind == "Deployment":
            for v in get(d, "spec.template.spec.volumes") or []:
                claim = get(v, "persistentVolumeClaim.claimName")
                if claim and claim not in claims:
                    problem(path, f"Deployment {name}: claim {claim} is not defined here")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    global root
    root = args.root
    files = sorted(p for d in ("docker", "deploy")
                   for ext in ("yaml", "yml")
                   for p in glob.glob(os.path.join(args.root, d, "**", "*." + ext), recursive=True))
    if not files:
        print("no YAML files found")
        return 1
    objects = []
    kustomized, hpas = set(), {}
    for path in files:
        rel = os.path.relpath(path, args.root)
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problem(rel, f"does not parse: {e}")
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                problem(rel, "a document that is not a mapping")
            elif "services" in doc:
                check_compose(rel, doc)
            elif "apiVersion" in doc or "kind" in doc:
                check_k8s(rel, doc, objects)
                if doc.get("kind") == "Kustomization":
                    base = os.path.dirname(path)
                    kustomized |= {os.path.normpath(os.path.join(base, r))
                                   for r in doc.get("resources") or []}
                elif doc.get("kind") == "HorizontalPodAutoscaler":
                    hpas[os.path.normpath(path)] = rel
            else:
                problem(rel, "neither a compose file nor Kubernetes objects")
        print(f"{rel}: parses, {len(docs)} documents")
    cross_check(objects)
    for full, rel in hpas.items():
        if full in kustomized:
            problem(rel, "the HPA recipe (needs prometheus-adapter) is in the kustomization")
    # Where kubectl is installed (it is not needed otherwise), kustomize must build the set.
    kubectl = shutil.which("kubectl")
    for full in sorted(kustomized and {os.path.dirname(k) for k in kustomized}):
        if not kubectl:
            print("kubectl not found: the kustomization is not built (checked by hand above)")
            break
        r = subprocess.run([kubectl, "kustomize", full], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            problem(os.path.relpath(full, args.root), f"kubectl kustomize failed: {r.stderr}")
        else:
            print(f"{os.path.relpath(full, args.root)}: kubectl kustomize builds it")
    for p in problems:
        print(p)
    print(f"{len(files)} YAML files, {len(objects)} Kubernetes objects: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
