#!/usr/bin/env python3
"""Checks the compose files without a Docker engine.

docker-compose.yml (the local stack with the simulator) and deploy/compose.production.yml (SuperOffice
itself: no simulator, two instances of each service, secrets as files) are parsed and checked: the
services each must have exist, every depends_on names a service, every command names a binary this
workspace builds, every file a service mounts or names exists in the repository, every PARTNER_*
variable is a configuration key the services know (the keys of config/default.toml, including the
optional ones it documents in comments; `PARTNER_X__Y_FILE` for key `x.y` read from a file), every
secret a service uses is declared, and every *_FILE variable points at a secret the service mounts.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARIES = {"partner-web", "partner-service", "superoffice-sim"}
FILES = {
    "docker-compose.yml": {"required": {"postgres", "migrate", "sim", "web", "service"}, "forbidden": set()},
    "deploy/compose.production.yml": {
        "required": {"migrate", "web", "service"},
        "forbidden": {"sim"},
        "replicas": {"web": 2, "service": 2},
        "healthchecks": {"web", "service"},
    },
}


def known_keys():
    keys, section = set(), None
    for line in (ROOT / "config/default.toml").read_text().splitlines():
        line = line.strip()
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#?\s*(\w+)\s*=", line)
        if m and section:
            keys.add(f"{section}.{m.group(1)}")
    return keys


def check(path, rules, keys):
    errors = []
    compose_file = ROOT / path
    base = compose_file.parent
    compose = yaml.safe_load(compose_file.read_text())
    services = compose.get("services") or {}
    missing = rules["required"] - set(services)
    if missing:
        errors.append(f"missing services: {sorted(missing)}")
    for name in rules["forbidden"] & set(services):
        errors.append(f"service {name!r} does not belong here")
    for name, count in rules.get("replicas", {}).items():
        replicas = ((services.get(name) or {}).get("deploy") or {}).get("replicas", 1)
        if replicas < count:
            errors.append(f"{name}: {replicas} instance(s), expected at least {count}")
    for name in rules.get("healthchecks", set()):
        if not (services.get(name) or {}).get("healthcheck"):
            errors.append(f"{name}: no healthcheck")
    volumes = set((compose.get("volumes") or {}).keys())
    declared_secrets = compose.get("secrets") or {}
    for secret, spec in declared_secrets.items():
        source = (spec or {}).get("file")
        if source is None:
            errors.append(f"secret {secret!r} has no file")
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                errors.append(f"{name}: depends_on unknown service {dep!r}")
        command = svc.get("command")
        if isinstance(command, list) and "image" not in svc:
            if command[0] not in BINARIES:
                errors.append(f"{name}: command {command[0]!r} is not a binary of this workspace")
            for arg in command[1:]:
                if arg.startswith("/app/") and not (ROOT / arg[len("/app/"):]).exists():
                    errors.append(f"{name}: {arg} does not exist in the repository (copied to /app)")
        mounted = set()
        for secret in svc.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in declared_secrets:
                errors.append(f"{name}: secret {secret_name!r} is not declared")
            mounted.add(secret_name)
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for var, value in env.items():
            if var.startswith("PARTNER_"):
                if "__" not in var:
                    errors.append(f"{name}: {var} is not PARTNER_<SECTION>__<KEY>")
                    continue
                section, key = var[len("PARTNER_"):].split("__", 1)
                full = f"{section.lower()}.{key.lower()}"
                from_file = full.endswith("_file") and full not in keys and full[: -len("_file")] in keys
                if full not in keys and not from_file:
                    errors.append(f"{name}: {var} sets unknown configuration key {full}")
            if isinstance(value, str) and value.startswith("/run/secrets/"):
                secret_name = value[len("/run/secrets/"):]
                if secret_name not in mounted:
                    errors.append(f"{name}: {var} reads secret {secret_name!r}, which the service does not mount")
            if isinstance(value, str) and value.startswith("/app/") and not (ROOT / value[len("/app/"):]).exists():
                errors.append(f"{name}: {var}={value} does not exist in the repository (copied to /app)")
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source")
            if not source:
                continue
            if source.startswith("."):
                if not (base / source).exists():
                    errors.append(f"{name}: mounts {source}, which does not exist in the repository")
            elif not source.startswith("/") and source not in volumes:
                errors.append(f"{name}: volume {source!r} is not declared")
        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            if not (base / context / "Dockerfile").exists():
                errors.append(f"{name}: builds from {context}, which has no Dockerfile")
    return [f"{path}: {e}" for e in errors], len(services)


def main():
    keys = known_keys()
    failed = False
    for path, rules in FILES.items():
        errors, count = check(path, rules, keys)
        for e in errors:
            print(e, file=sys.stderr)
        failed = failed or bool(errors)
        if not errors:
            print(f"{path}: {count} services, all references, variables and secrets known")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
