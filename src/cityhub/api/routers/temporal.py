"""/temporal: entity history (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/temporal", tags=["temporal"])
