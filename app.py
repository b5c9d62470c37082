"""CLM on AWS Chalice: create the app, register middleware and blueprints. Nothing else."""

from __future__ import annotations

from chalice import Chalice, ConvertToMiddleware

from chalicelib.api.payments import payments_api
from chalicelib.api.staff import staff_api
from chalicelib.api.webhooks import webhooks
from chalicelib.api.workers import workers
from chalicelib.observability import logger
from chalicelib.startup import settle_after_first_invocation

app = Chalice(app_name="clm")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context()))
app.register_middleware(settle_after_first_invocation)
app.register_blueprint(webhooks)
app.register_blueprint(payments_api)
app.register_blueprint(staff_api)
app.register_blueprint(workers)
