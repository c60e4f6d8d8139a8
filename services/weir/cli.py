"""`weir <command>`: one entry point for every deployable (one image, several commands)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from weir.core.config import Settings, get_settings


def _api(settings: Settings) -> None:
    from weir.api.server import serve_api

    serve_api(settings)


def _consumer(settings: Settings) -> None:
    from weir.consumer.service import run_consumer

    asyncio.run(run_consumer(settings))


def _dev(settings: Settings) -> None:
    from weir.embedded import run_embedded

    run_embedded(settings)


def _migrate(settings: Settings) -> None:
    from weir.provision import provision

    asyncio.run(provision(settings))


def _replay_dlq(settings: Settings) -> None:
    from weir.consumer.replay import replay_dead_letters

    asyncio.run(replay_dead_letters(settings))


def _erase_user(settings: Settings) -> None:
    from weir.provision import erase

    sys.exit(erase(settings, sys.argv[2:]))


def _keys(_: Settings) -> None:
    from weir.keytool import main as keys_main

    sys.exit(keys_main(sys.argv[2:]))


def _operator(_: Settings) -> None:
    from weir_operator.cli import main as operator_main

    operator_main(sys.argv[2:])


# Service names in traces, per command (OTEL_SERVICE_NAME overrides).
SERVICE_NAMES = {"api": "weir-api", "consumer": "weir-consumer", "operator": "weir-operator"}

COMMANDS = {
    "api": (_api, "serve the ingestion and metrics API (Kafka + ClickHouse)"),
    "consumer": (_consumer, "consume events from Kafka into ClickHouse"),
    "dev": (_dev, "embedded default: API + in-process log + consumer + chDB in one process"),
    "migrate": (_migrate, "create or migrate the ClickHouse schema and the topics, then exit"),
    "replay-dlq": (_replay_dlq, "re-publish dead letters to the events topic"),
    "operator": (_operator, "run the kopf operator for Topic and Table resources"),
    "keys": (_keys, "create, list or revoke API keys (a keys file of digests)"),
    "erase-user": (_erase_user, "delete every event of a user_id from raw and rollups"),
}
# Commands that parse their own arguments (`weir keys --help` is theirs, not ours).
OWN_ARGUMENTS = ("operator", "keys", "erase-user")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="weir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=name not in OWN_ARGUMENTS)
    args, _unknown = parser.parse_known_args(argv)
    from weir.observability.logs import configure_logging
    from weir.observability.tracing import configure_tracing

    settings = get_settings()
    configure_logging(settings)
    configure_tracing(SERVICE_NAMES.get(args.command, f"weir-{args.command}"))
    COMMANDS[args.command][0](settings)


if __name__ == "__main__":
    main()
