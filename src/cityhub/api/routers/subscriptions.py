"""/subscriptions (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
