"""`weir keys`: create, list and revoke API keys in a keys file (JSON of digests, never keys).

The file is what the API reads (`WEIR_API_KEYS_FILE`); in a cluster it is the content of the
Secret the chart mounts (charts/weir/README.md: "API keys"). A new key is printed once, on stdout,
and only its SHA-256 is written. Rotation: create a second key, move the clients, revoke the
first; both are valid meanwhile.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from weir.core.keys import KEY_ID, ApiKey, KeyKind, digest, dump_keys, load_keys, new_key

DEFAULT_FILE = "weir-keys.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="weir keys", description=__doc__)
    parser.add_argument(
        "--file",
        type=Path,
        default=Path(os.environ.get("WEIR_API_KEYS_FILE") or DEFAULT_FILE),
        help=f"keys file (default: $WEIR_API_KEYS_FILE or {DEFAULT_FILE})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="make a key, store its digest, print it once")
    create.add_argument("--kind", choices=[k.value for k in KeyKind], required=True)
    create.add_argument("--id", help="its name in logs and metrics (default: kind + a counter)")
    create.add_argument("--rate", type=float, help="events (write) or requests (read) per second")
    create.add_argument("--burst", type=int, help="bucket size")
    commands.add_parser("list", help="ids and kinds (no key is ever shown again)")
    revoke = commands.add_parser("revoke", help="remove every key with this id")
    revoke.add_argument("id")
    args = parser.parse_args(argv)
    keys = load_keys(args.file)
    if args.command == "list":
        for key in keys:
            quota = f"rate={key.rate or 'default'}\tburst={key.burst or 'default'}"
            print(f"{key.id}\t{key.kind}\t{quota}")
        return 0
    if args.command == "revoke":
        kept = [key for key in keys if key.id != args.id]
        if len(kept) == len(keys):
            print(f"weir keys: no key with id {args.id!r} in {args.file}", file=sys.stderr)
            return 1
        _write(args.file, kept)
        print(f"revoked {args.id!r}; roll the API out for it to take effect", file=sys.stderr)
        return 0
    kind = KeyKind(args.kind)
    key_id = args.id or _next_id(kind, keys)
    if not KEY_ID.match(key_id):
        print(f"weir keys: id must match {KEY_ID.pattern}", file=sys.stderr)
        return 1
    secret = new_key(kind)
    entry = ApiKey(id=key_id, kind=kind, sha256=digest(secret), rate=args.rate, burst=args.burst)
    _write(args.file, [*keys, entry])
    print(secret)
    print(
        f"created {kind} key {key_id!r} in {args.file}: the line above is the key, shown only "
        "now. Update the Secret from this file and roll the API out.",
        file=sys.stderr,
    )
    return 0


def _next_id(kind: KeyKind, keys: list[ApiKey]) -> str:
    taken = {key.id for key in keys}
    n = 1
    while f"{kind}-{n}" in taken:
        n += 1
    return f"{kind}-{n}"


def _write(path: Path, keys: list[ApiKey]) -> None:
    """Replace the file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(dump_keys(keys))
    temporary.replace(path)
