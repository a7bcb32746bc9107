"""Alerts: delivery to Slack, e-mail, webhooks and callbacks (``dispatcher``) and what to send (``rules``)."""

from xpyrment_sql.alerts.dispatcher import DEFAULT_TIMEOUT, WebhookAlertDispatcher

__all__ = ["DEFAULT_TIMEOUT", "WebhookAlertDispatcher"]
