"""Settings of the web service (environment variables, upper-case names)."""

from __future__ import annotations

from pydantic import Field, model_validator
from shop_common.settings import ServiceSettings, refuse_development_secret

DEV_SIGNUP_PASSWORD = "signup-password-dev"


class Settings(ServiceSettings):
    """The web service's settings: its address, where the gateway is, the sign-up account,
    how often the live streams look, and what the console scrapes."""

    service_name: str = "web-service"
    host: str = "127.0.0.1"
    http_port: int = 8004
    # The largest request body: an OTLP trace export (POST /v1/traces) is the largest; the
    # gateway bounds what clients send (its own MAX_BODY_BYTES) and sign-up's fields are short.
    max_body_bytes: int = Field(default=4_194_304, ge=1)
    shutdown_grace_seconds: float = Field(default=5.0, gt=0)

    # The public API the pages use, and that the web service itself calls (sign-up, orders).
    gateway_url: str = "http://127.0.0.1:8000"
    gateway_timeout_seconds: float = Field(default=10.0, gt=0)
    # Sign-up logs in as this account, which holds only the `registrar` role: the user service
    # lets it create shopper accounts (role `user`) and nothing else, so the web service holds
    # no admin credential. Development default = the account the launcher creates.
    signup_account_email: str = "signup@shop.example"
    signup_account_password: str = DEV_SIGNUP_PASSWORD

    # Live streams (Server-Sent Events): how often an order is looked at, how long one stream
    # lasts at most (the page opens another), and the keep-alive comment for idle proxies.
    order_poll_interval_seconds: float = Field(default=0.25, gt=0)
    stream_max_seconds: float = Field(default=300.0, gt=0)
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)

    # The console: every instance of these services is scraped (/metrics) each interval, while
    # an admin watches. Instances come from discovery (Consul, by service name) or these static
    # addresses (`<SERVICE>_ADDRESSES`, as the gateway's); the user service serves its metrics
    # on its own port, so it is listed as `user-service-metrics`.
    console_interval_seconds: float = Field(default=1.0, gt=0)
    console_scrape_timeout_seconds: float = Field(default=0.8, gt=0)
    gateway_addresses: str = "127.0.0.1:8000"
    order_service_addresses: str = "127.0.0.1:8001"
    payment_service_addresses: str = "127.0.0.1:8002"
    catalog_service_addresses: str = "127.0.0.1:8003"
    web_service_addresses: str = "127.0.0.1:8004"
    user_service_metrics_addresses: str = "127.0.0.1:9101,127.0.0.1:9102"
    # The dead-letter browser lists at most this many messages of a DLQ.
    dlq_list_limit: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _refuse_dev_signup_secret_outside_development(self) -> Settings:
        refuse_development_secret(
            self.environment,
            "SIGNUP_ACCOUNT_PASSWORD",
            self.signup_account_password,
            DEV_SIGNUP_PASSWORD,
        )
        return self
