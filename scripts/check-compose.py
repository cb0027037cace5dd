#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine.

It parses the file and checks that the five services exist, that every depends_on names a service,
that every command names a binary this workspace builds, that every file a service mounts or names
exists in the repository, and that every PARTNER_* variable is a configuration key the services know
(the keys of config/default.toml, including the optional ones it documents in comments).
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRED = {"postgres", "migrate", "sim", "web", "service"}
BINARIES = {"partner-web", "partner-service", "superoffice-sim"}


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


def main():
    errors = []
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services") or {}
    missing = REQUIRED - set(services)
    if missing:
        errors.append(f"missing services: {sorted(missing)}")
    keys = known_keys()
    volumes = set((compose.get("volumes") or {}).keys())
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
                if full not in keys:
                    errors.append(f"{name}: {var} sets unknown configuration key {full}")
            if isinstance(value, str) and value.startswith("/app/") and not (ROOT / value[len("/app/"):]).exists():
                errors.append(f"{name}: {var}={value} does not exist in the repository (copied to /app)")
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source")
            if source and not source.startswith((".", "/")) and source not in volumes:
                errors.append(f"{name}: volume {source!r} is not declared")
        if "build" in svc and not (ROOT / "Dockerfile").exists():
            errors.append(f"{name}: builds from a Dockerfile that does not exist")
    if errors:
        for e in errors:
            print(f"docker-compose.yml: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"docker-compose.yml: {len(services)} services, all references and variables known")


if __name__ == "__main__":
    main()
