"""Structured JSON logs (Powertools Logger), shared by every function of the app."""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger

logger = Logger(service="avatar-creator", level=os.environ.get("LOG_LEVEL", "INFO"))
