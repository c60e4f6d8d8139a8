"""`weir operator`: run the kopf operator for Topic and Table (one replica, standalone).

    weir operator [--namespace NS ...] [--liveness URL] [--verbose]

Without --namespace it watches every namespace (cluster-wide RBAC, as the chart grants).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from weir_operator.settings import OperatorSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weir operator", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--namespace", action="append", default=[], help="repeatable")
    parser.add_argument(
        "--liveness",
        default=f"http://0.0.0.0:{OperatorSettings().liveness_port}/healthz",
        help="kopf liveness endpoint ('' disables it)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def run(
    namespaces: list[str],
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """The operator as a coroutine (tests run it in their own loop). Registers the handlers."""
    import weir_operator.handlers  # noqa: F401 - importing registers the kopf handlers

    await kopf.operator(
        standalone=True,  # one replica: no peering objects to create or RBAC for them
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness_endpoint or None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


class _DropKopfSettings(logging.Filter):
    """kopf attaches its OperatorSettings to each record for its Event poster (which has run by
    the time the root handlers see the record); a JSON formatter cannot serialize them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("settings", None)
        return True


def configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if root.handlers:  # `weir operator`: weir.observability.logs configured JSON logs already
        for handler in root.handlers:
            handler.addFilter(_DropKopfSettings())
        if verbose:
            root.setLevel(logging.DEBUG)
    else:  # `python -m weir_operator`
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.verbose)
    asyncio.run(run(args.namespace, args.liveness))
