"""``metasync render``: one environment's desired resources as JSON (contract) or YAML manifests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from metasync.manifests.yamlio import dump_documents
from metasync.model.resource import Resource

FORMAT_VERSION = 1
API_VERSION = "metasync/v1"


def resources_document(environment: str, resources: Sequence[Resource]) -> dict[str, Any]:
    """The JSON shape of docs/json.md (``formatVersion: 1``)."""
    return {
        "formatVersion": FORMAT_VERSION,
        "environment": environment,
        "resources": [
            {"kind": r.kind, "name": r.name, "version": r.version, "spec": r.spec}
            for r in resources
        ],
    }


def write_json(stream: IO[str], environment: str, resources: Sequence[Resource]) -> None:
    json.dump(resources_document(environment, resources), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def write_yaml(stream: IO[str], environment: str, resources: Sequence[Resource]) -> None:
    """Manifest documents with variables resolved (secrets stay placeholders)."""
    stream.write(f"# metasync render --env {environment}\n")
    documents = []
    for r in resources:
        metadata: dict[str, Any] = {"name": r.name}
        if r.labels:
            metadata["labels"] = dict(r.labels)
        documents.append(
            {"apiVersion": API_VERSION, "kind": r.kind, "metadata": metadata, "spec": r.spec}
        )
    stream.write(dump_documents(documents))
