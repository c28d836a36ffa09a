"""A server's lists are parsed as their bytes arrive (conductor/stream.py), each object with a
digest of its own JSON text that keys the plan's fingerprint memo (plan/memo.py): the same value as
a whole ``json.loads`` for any split of the bytes, the same errors, and no digest where the text
could show a secret."""

from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from faultproxy import FaultProxy
from helpers import prefixed_example, run_cli
from metasync.conductor.client import ConductorClient
from metasync.conductor.stream import Listed, ListParser, glance
from metasync.manifests.secrets import Secrets
from metasync.model.kinds import KINDS
from metasync.operations.plan import plan
from metasync.plan.memo import text_digest
from metasync.project import Project

DOCUMENTS = [
    b"[]",
    b" [ ]\n",
    b"[1, 2.5e3, -7, true, false, null]",
    '[{"name": "caf\u00e9 \u2603 \U0001f600", "tasks": [{"a": [1, {"b": null}]}]}, "x"]'.encode(),
    b'[{"script": "line\\none \\"quoted\\" \\u00e9"}, {"k": "]},[{"}]',
    json.dumps(
        [{"name": f"w{i}", "version": i, "tasks": [{"x": "y" * i}]} for i in range(50)]
    ).encode(),
]


#: what json, the utf-8 decoder and the parser say of an answer that is not a whole list
NOT_JSON = (
    "Expecting value|Extra data|Unterminated|expected ',' or ']'|not closed|extra data|can't decode"
)


def parse(data: bytes, sizes: list[int]) -> tuple[Any, list[Any]]:
    parser = ListParser(digest=lambda text: text)
    at = 0
    for size in sizes:
        parser.feed(data[at : at + size])
        at += size
    parser.feed(data[at:])
    return parser.result(), parser.digests


@pytest.mark.parametrize("data", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_any_split_of_the_bytes_parses_as_json_loads_does(data: bytes) -> None:
    expected = json.loads(data)
    rng = random.Random(len(data))
    splits = [[1] * len(data), [2] * len(data), [7] * len(data)]
    splits += [[rng.randint(1, 40) for _ in range(len(data))] for _ in range(20)]
    for sizes in splits:
        value, texts = parse(data, sizes)
        assert value == expected
        # each element's digest is of its own text, exactly as the server wrote it
        assert [json.loads(text) for text in texts] == expected
        assert all(text in data.decode() for text in texts)


@pytest.mark.parametrize(
    "data",
    [
        b"[1,]",
        b"[,1]",
        b"[1 2]",
        b"[1",
        b'[{"a": 1}',
        b"[1]x",
        b'[{"a": 1}}]',
        b"[\xff]",
        b"",
        b"  ",
    ],
)
def test_what_is_not_a_whole_json_list_is_an_error(data: bytes) -> None:
    for size in (1, 3, 1000):
        with pytest.raises(ValueError, match=NOT_JSON):
            parse(data, [size] * len(data))


def test_an_answer_that_is_not_a_list_is_parsed_whole() -> None:
    for data in (b'{"status": 404, "message": "x"}', b'  "text"', b"12"):
        assert parse(data, [1] * len(data))[0] == json.loads(data)


def test_after_an_error_the_parser_stays_failed() -> None:
    parser = ListParser()
    for step in (lambda: parser.feed(b"[1 2"), lambda: parser.feed(b"]"), parser.result):
        with pytest.raises(ValueError, match="expected ',' or ']' after element 1"):
            step()


def test_no_digest_where_the_text_could_show_a_secret() -> None:
    digest = text_digest(["s3cr3t-value", ""])
    plain = '{"name": "a", "headers": {"token": "abc"}}'
    assert digest(plain) == digest(plain) is not None
    assert digest(plain) != digest(plain.replace("abc", "abd"))
    assert digest('{"token": "s3cr3t-value"}') is None  # a secret's value
    assert digest('{"token": "Bearer ((secrets.API))"}') is None  # a placeholder
    # an escape can spell a secret's characters: a text with one is never kept
    assert digest('{"token": "s3cr3t\\u002dvalue"}') is None
    assert digest('{"script": "a\\nb"}') is None


def test_an_object_with_a_digest_is_kept_as_its_text_and_read_as_the_object() -> None:
    """What a plan's memo finds unchanged is never walked: such objects stay text until a look
    past what identifies them; as mappings they are the objects json.loads makes."""
    data = b'[{"name": "a", "version": 2, "tasks": [{"t": 1}]}, {"name": "b\\n"}, 3]'
    digest = text_digest([])
    parser = ListParser(digest)
    parser.feed(data)
    first, second, third = parser.result()
    assert isinstance(first, Listed)
    assert isinstance(second, dict)
    assert third == 3
    # what identifies it, and whose it is, without parsing
    assert (first["name"], first.get("version"), first.get("ownerApp", "-")) == ("a", 2, "-")
    assert "version" in first
    assert "ownerApp" not in first
    assert first._value is None
    expected = json.loads(data)[0]
    # a glance (the fingerprint of an unchanged object) parses it and keeps the text alone
    assert glance(first) == expected
    assert first._value is None
    assert glance(second) is second
    assert first == expected
    assert expected == first
    assert first != {"name": "a"}
    assert first._value is not None
    assert dict(first) == {**first} == expected
    assert len(first) == 3
    assert first["tasks"] is first["tasks"]  # parsed once
    for copied in (copy.deepcopy(first), copy.copy(first), pickle.loads(pickle.dumps(first))):
        assert type(copied) is dict
        assert copied == expected
    assert json.dumps(dict(first)) == json.dumps(expected)
    # masked as a dict is (a secret's value in a server object never shows)
    assert Secrets({"TOKEN": "a"}).mask(Listed('{"name": "a"}', {"name": "a"})) == {
        "name": "((secrets.TOKEN))"
    }
    with pytest.raises(KeyError):
        first["nothing"]
    with pytest.raises(TypeError):
        hash(first)


def applied(tmp_path: Path, prefix: str, url: str) -> Path:
    """The example project, applied to the server at ``url``."""
    root = prefixed_example(tmp_path / "project", prefix, url)
    assert run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve").exit_code == 0
    return root


@pytest.mark.server
def test_a_servers_lists_read_as_they_arrive_are_its_lists(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    applied(tmp_path, prefix, conductor.url)
    with ConductorClient.connect(conductor.url, label="the dev server") as client:
        for kind in ("TaskDef", "WorkflowDef", "EventHandler"):
            listed = client.objects(KINDS[kind], digest=lambda text: text)
            assert listed is not None
            whole = httpx.get(f"{conductor.url}/api{KINDS[kind].endpoints.list}").json()
            assert list(listed) == whole
            assert len(listed.digests) == len(whole)  # type: ignore[attr-defined]
            assert [json.loads(t) for t in listed.digests] == whole  # type: ignore[attr-defined]
            assert any(o["name"].startswith(prefix) for o in listed)


@pytest.mark.server
def test_a_list_cut_short_mid_answer_is_read_again(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    root = applied(tmp_path, prefix, conductor.url)
    request = "GET /api/metadata/taskdefs"  # every plan reads the whole list
    with FaultProxy(conductor.url, first={request: ["cut", "cut"]}) as proxy:
        env = root / "environments" / "dev" / "environment.yaml"
        env.write_text(env.read_text().replace(conductor.url, proxy.url))
        result = run_cli("--project", str(root), "--no-cache", "plan", "--env", "dev")
        assert proxy.seen("GET", "/api/metadata/taskdefs") == ["cut", "cut", "pass"], (
            proxy.log,
            result.stdout,
            result.stderr,
        )
    assert result.exit_code == 0, result.stderr
    assert "0 to create, 0 to update, 0 to delete" in result.stdout


@pytest.mark.server
def test_a_cold_plan_keeps_what_it_finds_unchanged_as_text(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """With no fingerprint remembered, a plan normalizes every server object once, and keeps
    the unchanged ones as their text (10,000 workflows parsed and kept: 250 MiB more)."""
    root = applied(tmp_path, prefix, conductor.url)
    planned = plan(Project(root, cache=False), "dev")
    unchanged = [c for c in planned.plan.changes if c.action == "noop"]
    listed = [c for c in unchanged if isinstance(c.live, Listed)]  # the others: text with a \\
    assert {c.kind for c in listed} >= {"TaskDef", "WorkflowDef"}, unchanged
    for change in listed:
        assert change.live._value is None, change.key  # type: ignore[union-attr]
        assert change.live_fingerprint == change.desired_fingerprint is not None
