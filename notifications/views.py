"""Pages and webhooks of the notifications package."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, template_folder="templates")
