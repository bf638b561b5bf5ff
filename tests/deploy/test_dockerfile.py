"""The image both deployments run (the repository's Dockerfile), checked as text without a
Docker engine: multi-stage, the final stage without pip or the development extra, running as a
numeric non-root user; everything it copies exists; secrets stay out of the build context."""

from __future__ import annotations

import re

from deploy_kit import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)  # continuation lines joined
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def test_the_image_is_built_in_stages_and_runs_as_a_numeric_non_root_user() -> None:
    *builders, final = stages()
    assert builders, "a build stage and a final stage"
    assert any(" AS " in rest.upper() for word, rest in builders[0] if word == "FROM")
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets its user"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid.isdigit()
    assert int(gid) > 0
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies
    assert all(c.startswith("--from=") for c in copies), "only built files"
    assert not [rest for word, rest in final if word == "RUN" and "pip" in rest]


def test_no_development_dependency_is_installed() -> None:
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert "pip install ." in runs
    assert "[dev]" not in runs
    assert ".[" not in runs
    assert "pip uninstall --yes pip" in runs  # the installer itself does not ship


def test_everything_copied_exists_and_secrets_stay_out_of_the_build() -> None:
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from="):
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "**/.env", ".venv", ".git"} <= set(ignored)
