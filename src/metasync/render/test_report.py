"""``metasync test`` results: text for people, JSON (formatVersion 1), JUnit XML for CI."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

import yaml

from metasync.testing.runner import TestResult


def _where(result: TestResult) -> tuple[str | None, int | None]:
    if result.test.origin is None:
        return None, None
    location = result.test.origin.locate(("workflow",), "workflow")
    return location.file, location.line


def _title(result: TestResult) -> str:
    version = f" v{result.version}" if result.version is not None else ""
    return f"{result.test.name} ({result.workflow}{version})"


def counts(results: Sequence[TestResult]) -> dict[str, int]:
    found = {"passed": 0, "failed": 0, "error": 0}
    for result in results:
        found[result.outcome] += 1
    return found


def write_test_text(stream: IO[str], environment: str, server: str,
                    results: Sequence[TestResult], seconds: float) -> None:  # fmt: skip
    for result in results:
        mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[result.outcome]
        stream.write(f"{mark} {_title(result)} {result.seconds:.2f} s\n")
        if result.outcome == "passed":
            continue
        file, line = _where(result)
        if file:
            stream.write(f"  {file}:{line}\n" if line else f"  {file}\n")
        for failure in result.failures:
            stream.write(f"  - {failure}\n")
        if result.path:
            stream.write(f"  ran: {' > '.join(result.path)}\n")
    found = counts(results)
    stream.write(
        f"{found['passed']} passed, {found['failed']} failed"
        + (f", {found['error']} error(s)" if found["error"] else "")
        + f" in {seconds:.1f} s ({environment}: {server})\n"
    )


def test_document(environment: str, server: str, results: Sequence[TestResult],
                  seconds: float) -> dict[str, Any]:  # fmt: skip
    tests = []
    for result in results:
        file, line = _where(result)
        tests.append({
            "name": result.test.name,
            "workflow": result.workflow,
            "version": result.version,
            "file": file,
            "line": line,
            "outcome": result.outcome,
            "seconds": round(result.seconds, 3),
            "status": result.status,
            "failures": list(result.failures),
            "path": list(result.path),
            "executions": list(result.executions),
        })  # fmt: skip
    return {
        "kind": "metasync-test-report",
        "formatVersion": 1,
        "environment": environment,
        "server": server,
        "seconds": round(seconds, 3),
        "summary": counts(results),
        "tests": tests,
    }


def write_test_json(stream: IO[str], environment: str, server: str,
                    results: Sequence[TestResult], seconds: float) -> None:  # fmt: skip
    document = test_document(environment, server, results, seconds)
    stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_test_junit(stream: IO[str], environment: str, server: str,
                     results: Sequence[TestResult], seconds: float) -> None:  # fmt: skip
    """JUnit XML as CI systems read it: one testsuite per run, one testcase per test."""
    found = counts(results)
    attributes = {"tests": str(len(results)), "failures": str(found["failed"]),
                  "errors": str(found["error"]), "time": f"{seconds:.3f}"}  # fmt: skip
    suites = ET.Element("testsuites", {"name": "metasync test", **attributes})
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"metasync test {environment}", **attributes, "skipped": "0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "hostname": socket.gethostname(),
    })  # fmt: skip
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "server", "value": server})
    for result in results:
        file, line = _where(result)
        case = ET.SubElement(suite, "testcase", {
            "name": result.test.name,
            "classname": f"{result.workflow}.v{result.version}" if result.version is not None
            else result.workflow,
            "time": f"{result.seconds:.3f}",
            **({"file": file} if file else {}),
            **({"line": str(line)} if line else {}),
        })  # fmt: skip
        if result.outcome != "passed":
            body = "\n".join([*result.failures, *([f"ran: {' > '.join(result.path)}"]
                                                  if result.path else [])])  # fmt: skip
            tag = "failure" if result.outcome == "failed" else "error"
            element = ET.SubElement(case, tag, {"message": result.failures[0] if result.failures
                                                else result.outcome, "type": "WorkflowTest"})  # fmt: skip
            element.text = body
    ET.indent(suites)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(suites, encoding="unicode") + "\n")


def write_generated(stream: IO[str], document: dict[str, Any], execution: str) -> None:
    """A generated test as a manifest, with a word on what to do with it."""
    stream.write(
        f"# Generated by `metasync test --generate` from execution {execution}: its input, its\n"
        "# workers' outputs as mocks and its path as expectations. Keep what the test is about,\n"
        "# drop what is incidental (ids, timestamps), and name it for the behaviour it pins.\n"
    )
    stream.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))
