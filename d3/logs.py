"""Logging through loguru, with the SDK's stdlib loggers routed into it.

One line per event; context (hotkey, uid, manifest) is bound by the caller with
`logger.bind(...)` or passed in the message. Nothing here ever formats secrets: configs
hold them as `SecretStr`, which renders as '**********'.
"""

from __future__ import annotations

import logging
import sys
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


def _patch_extra(record: dict) -> None:
    """Render bound context (hotkey=..., uid=...) at the end of the line."""
    extra = {k: v for k, v in record["extra"].items() if k != "extra_text"}
    text = " ".join(f"{k}={v}" for k, v in extra.items())
    record["extra"]["extra_text"] = f" | {text}" if text else ""


def setup_logging(config: LoggingConfig, process_name: str) -> None:
    """Configure loguru sinks for a neuron process; idempotent (removes earlier sinks)."""
    level = "TRACE" if config.trace else "DEBUG" if config.debug else "INFO"
    logger.remove()
    logger.configure(patcher=_patch_extra)
    logger.add(sys.stderr, level=level, format=FORMAT, backtrace=False, diagnose=False)
    if config.logging_dir:
        directory = Path(config.logging_dir).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        logger.add(
            directory / f"{process_name}.log",
            level=level,
            format=FORMAT,
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
