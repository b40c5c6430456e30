"""Mounting the REST→gRPC transcoding router for /api/users/** (built in gateway.transcoding)."""

from __future__ import annotations

from fastapi import FastAPI


def mount_transcoding(app: FastAPI) -> None:
    """Include the transcoding router (it reads the UserClient and principal per request)."""
