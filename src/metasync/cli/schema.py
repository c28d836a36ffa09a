"""``metasync schema``: the JSON Schemas of metasync's files, for editors."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from metasync.cli import cli
from metasync.cli.boundary import EXIT_OK
from metasync.errors import ConfigError, Location
from metasync.manifests.json_schema import (
    DEFAULT_FLAVOUR,
    FILES,
    SCHEMA_KINDS,
    SchemaKind,
    dumps,
    file_name,
    json_schema,
)
from metasync.model.flavour import FLAVOURS, Flavour


@cli.command()
@click.option("--kind", "kinds", multiple=True, type=click.Choice(SCHEMA_KINDS),
              help="Which file's schema (repeatable; default with --out: every one).")  # fmt: skip
@click.option("--flavour", type=click.Choice(FLAVOURS), default=DEFAULT_FLAVOUR, show_default=True,
              help="The server the schema completes for: 3.15 leaves out what only "
              "conductor-oss knows; oss (the superset) takes both.")  # fmt: skip
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write <kind>.schema.json files into DIR (<kind>-3.15.schema.json for "
              "--flavour 3.15) instead of printing one schema.")  # fmt: skip
def schema(kinds: tuple[str, ...], flavour: str, out: Path | None) -> int:
    """Print or write the JSON Schema of manifests, environment.yaml, overlays and metasync.yaml,
    for editors: a file whose first line is `# yaml-language-server: $schema=PATH` gets
    completion and checks in VS Code (YAML extension) and IntelliJ."""
    chosen = [cast(SchemaKind, k) for k in dict.fromkeys(kinds)]
    server = cast(Flavour, flavour)
    if out is None:
        if len(chosen) != 1:
            raise click.UsageError(
                "metasync schema prints one schema at a time: name it with --kind (manifest, "
                "environment, overlay or project), or write them all with --out DIR."
            )
        click.echo(dumps(json_schema(chosen[0], server)), nl=False)
        return EXIT_OK
    try:
        out.mkdir(parents=True, exist_ok=True)
        for kind in chosen or SCHEMA_KINDS:
            path = out / file_name(kind, server)
            path.write_text(dumps(json_schema(kind, server)))
            click.echo(f"wrote {path} (for {FILES[kind]})")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the schemas: {exc.strerror or exc}",
            location=Location(str(out)),
            hint="Choose a folder you can write to with --out.",
        ) from None
    click.echo(
        "Editors read a schema named on a file's first line: "
        "# yaml-language-server: $schema=<path of the schema, relative to the file>"
    )
    return EXIT_OK
