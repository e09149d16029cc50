"""Logging through loguru, with the SDK's stdlib loggers routed into it.

One line per event; context (hotkey, uid, manifest) is bound by the caller with
`logger.bind(...)` or passed in the message. Nothing here ever formats secrets: configs
hold them as `SecretStr`, which renders as '**********'.

With `--logging.json` each line is one JSON object instead, the bound context as its own
keys, for a log shipper:

    {"time": "2026-12-01T12:00:00.123456+00:00", "level": "INFO", "name": "d3.validator.rounds",
     "line": 288, "message": "manifest accepted: 100 rows, 100 new unique", "hotkey": "5F...",
     "uid": 3}

plus "exception" (the traceback text) when there is one. The console log goes to stdout,
which pm2 files as out (its error file then holds only what is not a log line: a crash's
traceback), unless `--logging.stream stderr` (`D3_LOGGING_STREAM=stderr`); log files
(`--logging.logging_dir`) take the same form. The one line of a fatal exit (`fatal_exits`
in d3/startup.py) is a log line like any other. Only a flag or variable that cannot be
parsed is reported on stderr (status 2, as argparse does): logging is not set up yet.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

from loguru import logger

from d3.config import LoggingConfig

FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name}:{line} | {message}{extra[extra_text]}"
)


class _InterceptHandler(logging.Handler):
    """Forward stdlib records (bittensor, websockets, urllib3) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


_RESERVED = ("extra_text", "json_line")


def _json_format(record: dict) -> str:
    return "{extra[json_line]}\n"  # a callable format: loguru appends no traceback text


def _patch_extra(record: dict) -> None:
    """Render bound context (hotkey=..., uid=...) at the end of the line."""
    extra = {k: v for k, v in record["extra"].items() if k not in _RESERVED}
    text = " ".join(f"{k}={v}" for k, v in extra.items())
    record["extra"]["extra_text"] = f" | {text}" if text else ""


def _patch_json(record: dict) -> None:
    """The whole record as one JSON object, for the JSON sinks."""
    extra = {k: v for k, v in record["extra"].items() if k not in _RESERVED}
    record["extra"]["json_line"] = json_line(record, extra)


def json_line(record: dict, extra: dict) -> str:
    fields = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "name": record["name"],
        "line": record["line"],
        "message": record["message"],
    }
    for key, value in extra.items():
        fields.setdefault(key, value)
    if record["exception"] is not None:
        kind, value, tb = record["exception"]
        fields["exception"] = "".join(traceback.format_exception(kind, value, tb))
    return json.dumps(fields, default=str, ensure_ascii=False)


def setup_logging(config: LoggingConfig, process_name: str) -> None:
    """Configure loguru sinks for a neuron process; idempotent (removes earlier sinks)."""
    level = "TRACE" if config.trace else "DEBUG" if config.debug else "INFO"
    form = _json_format if config.json else FORMAT
    logger.remove()
    logger.configure(patcher=_patch_json if config.json else _patch_extra)
    stream = sys.stderr if config.stream == "stderr" else sys.stdout
    logger.add(stream, level=level, format=form, backtrace=False, diagnose=False)
    if config.logging_dir:
        directory = Path(config.logging_dir).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        logger.add(
            directory / f"{process_name}.log",
            level=level,
            format=form,
            rotation="50 MB",
            retention=10,
            compression="gz",
            enqueue=True,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.NOTSET, force=True)
    # The SDK logs every RPC at DEBUG; keep it one notch quieter than our own events.
    sdk_level = logging.DEBUG if config.trace else logging.INFO if config.debug else logging.WARNING
    for name in ("bittensor", "websockets", "urllib3", "botocore"):
        logging.getLogger(name).setLevel(sdk_level)
