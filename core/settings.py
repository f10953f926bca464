"""Application settings, read from the environment and `.env` (one place for all config)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every tunable of the stack. Environment variables win over `.env`.

    Secrets have no defaults; :func:`require_secrets` refuses to start a service whose secrets
    are missing, half-configured or weak (see there).
    """

    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    # Where runtime state lives (SQLite files, trained models, logs).
    var_dir: Path = ROOT / "var"
    # Application database (SQLModel). SQLite by default, PostgreSQL in production.
    database_url: str = ""
    # Rasa's tracker store; empty = derived from database_url (same database kind).
    tracker_database_url: str = ""

    # Host every service binds to; loopback unless deliberately exposed.
    host: str = "127.0.0.1"
    nlu_port: int = 5006
    action_port: int = 5055
    rasa_port: int = 5005
    # Where the gateway reaches Rasa; empty = http://<host>:<rasa_port> (compose: http://rasa:5005). Several
    # workers: comma-separated; each conversation sticks to one and moves on when its connection is refused.
    rasa_url: str = ""
    # Rasa processes `core.stack` starts (ports rasa_port, rasa_port + 1, ...); more than one needs the lock store.
    rasa_workers: int = Field(default=1, ge=1, le=16)
    # Rasa's lock store (redis://:password@host:6379/1): required with several Rasa workers; empty = in memory.
    lock_store_url: str = Field(default="", repr=False)
    # Customer messages per Rasa session: after this many (outside a form and a handoff) the next message starts
    # a new session with the slots carried over, so a turn's cost stays flat in a months-long Slack DM (Rasa
    # reads and replays the current session's events on every turn). 0 = only the domain's expiry time.
    rasa_session_turns: int = Field(default=20, ge=0, le=100_000)

    # Shared secrets of the internal services (empty: `core.stack` generates each on first run and keeps it in
    # var/internal-tokens.json, mode 600). Rasa sends NLU_TOKEN to the NLU service (`token` field); the gateway
    # sends RASA_TOKEN to Rasa (its HTTP API and REST channel); Rasa sends ACTION_TOKEN to the action server.
    nlu_token: str = Field(default="", repr=False)
    rasa_token: str = Field(default="", repr=False)
    action_token: str = Field(default="", repr=False)
    # Directory of the trained NLU model served by `nlu.server`.
    nlu_model_dir: Path = ROOT / "var" / "models" / "nlu"
    # Torch / ONNX Runtime intra-op threads for inference (0 = all cores).
    nlu_threads: int = 0
    # Inference backend: onnx (fp32 ONNX Runtime, same accuracy as torch, ~5x faster on CPU),
    # onnx-int8 (dynamic int8 quantization) or torch. See docs/BENCHMARKS.md.
    nlu_backend: str = "onnx"
    # Catalog CSV (name, category[, brand]) whose product types, names and brands the NLU tags as
    # `product` / `brand` entities; empty = none. Point it at an export of your catalog.
    nlu_catalog: str = str(ROOT / "recommender" / "demo" / "catalog.csv")

    # FAQ knowledge base imported at start-up (re-import only changes what changed).
    faq_kb: Path = ROOT / "bot" / "kb" / "faq.yml"
    # Sentence-transformers model for FAQ retrieval; empty = all-MiniLM-L6-v2 from its PyPI wheel.
    faq_embedder: str = ""
    # When the NLU fell back but its best intent has at least this confidence and retrieval's top
    # "did you mean" entry is written for that intent, the bot answers that entry (above 1: never).
    faq_agree_min_confidence: float = 0.5
    # Seconds between checks for a changed knowledge base in the running action server.
    faq_reload_seconds: float = 30.0

    # Trained recommender bundles (`python -m recommender.train`); `current` names the one served.
    rec_model_dir: Path = ROOT / "var" / "models" / "recommender"
    # Seconds between checks for a retrained recommender or a changed catalog in the running bot.
    rec_reload_seconds: float = 30.0
    # Torch threads of the action server's recommender: one customer's request is tiny, and a second
    # thread only adds wake-up stalls (100,000 items: p95 17 ms with 1 thread, 95 ms with 2).
    rec_threads: int = 1

    # Personal data masked in customer messages before they are stored, relayed to Rasa or logged
    # (core/pii.py): comma-separated kinds of email, card, iban, phone, address; empty = off. PII_PATTERNS
    # adds the shop's own, as a JSON object {"name": "regex"} (each masked as [name]).
    pii_redact: str = "email,card,iban,phone,address"
    pii_patterns: str = ""

    # Channels gateway (bot/channels): web chat page, staff console, Slack events. Customers reach the
    # bot only through it; it relays to Rasa's REST channel on loopback.
    gateway_port: int = 8000
    # The address people open (links in Slack posts); empty = http://<host>:<gateway_port>.
    public_url: str = ""
    # Queued handoffs nobody claims within this many seconds expire (the customer is told, the bot resumes).
    handoff_timeout_seconds: float = 600.0
    # A customer message this negative (sentiment score of the "negative" label) hands over to a person.
    handoff_negative_score: float = 0.9
    # Staff console sessions last this long; cookies are marked Secure when public_url is https.
    staff_session_hours: float = 12.0
    # Web chat identity: the shop signs customer ids with this secret (HMAC-SHA256, hex) so nobody can
    # chat as someone else. Empty = demo mode: the page may name any customer id unsigned.
    webchat_identity_secret: str = Field(default="", repr=False)
    # Slack app (one app: customers DM it, staff get handoffs in a channel). Empty token = Slack off.
    slack_bot_token: str = Field(default="", repr=False)
    slack_signing_secret: str = Field(default="", repr=False)
    slack_handoff_channel: str = ""  # channel id where new handoffs are posted with Claim / Resolve
    slack_api_url: str = "https://slack.com/api/"  # tests point this at a local mock of the Web API

    # Abuse limits of the gateway (bot/channels/limits.py). Bodies over MAX_BODY_BYTES get 413; rates are
    # requests per minute with a burst allowance, per client address (RATE_IP_*), per customer for
    # messages (RATE_CUSTOMER_*), per address for new chat sessions and console logins; 0 = unlimited.
    max_body_bytes: int = 65_536
    rate_ip_per_minute: float = 600.0
    rate_ip_burst: int = 120
    rate_customer_per_minute: float = 30.0
    rate_customer_burst: int = 10
    rate_sessions_per_minute: float = 20.0
    rate_sessions_burst: int = 10
    rate_login_per_minute: float = 10.0
    rate_login_burst: int = 5
    # Console sign-in lockout per account: after LOGIN_LOCKOUT_FAILURES wrong passwords in a row the account
    # refuses sign-ins for LOGIN_LOCKOUT_SECONDS, doubling with each further failure (at most an hour).
    login_lockout_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: float = Field(default=30.0, ge=0)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto the gateway believes (comma-separated
    # addresses or networks, e.g. "10.0.0.5,172.18.0.0/16"). Empty: the peer address is the client, always.
    trusted_proxies: str = ""

    # Sentiment alerts (monitoring.worker): the risk team's Slack channel id and/or a signed webhook.
    risk_slack_channel: str = ""
    alert_webhook_url: str = ""
    alert_webhook_secret: str = Field(default="", repr=False)  # required when alert_webhook_url is set
    # Rasa's event broker (RabbitMQ, amqp://user:password@host:5672/vhost). Set: Rasa publishes every event
    # to the queue and the monitor reads user turns from it; empty: the monitor polls the tracker store.
    event_broker_url: str = Field(default="", repr=False)
    event_broker_queue: str = "storebot_events"
    # With the broker, the monitor also reads the tracker store this often (seconds; 0 = never): Rasa drops the
    # events it cannot publish while the broker is down, and those turns are in the tracker store only.
    monitor_reconcile_seconds: float = Field(default=30.0, ge=0)
    # Prometheus: the monitor worker serves /metrics on this port (0 = off; never publish it); the public
    # gateway serves /metrics on its own port and, when the token is set, wants "Authorization: Bearer <token>".
    monitor_metrics_port: int = 9108
    metrics_token: str = Field(default="", repr=False)

    # Python 3.10 virtual environment holding Rasa (built by scripts/setup.sh).
    rasa_venv: Path = ROOT / ".venv-rasa"

    @property
    def app_db_url(self) -> str:
        """The application database URL, defaulting to a SQLite file under var/."""
        return self.database_url or f"sqlite:///{self.var_dir / 'app.db'}"

    @property
    def tracker_db_url(self) -> str:
        """Rasa tracker store URL: same kind as the app DB; SQLite gets its own file."""
        if self.tracker_database_url:
            return self.tracker_database_url
        if self.app_db_url.startswith("sqlite"):
            return f"sqlite:///{self.var_dir / 'tracker.db'}"
        return self.app_db_url

    @property
    def rasa_urls(self) -> str:
        """Where the gateway reaches Rasa: the configured URL(s), or every worker `core.stack` starts."""
        return self.rasa_url or ",".join(self.url(self.rasa_port + i) for i in range(self.rasa_workers))

    @property
    def public_base_url(self) -> str:
        """Base address of the web chat and the console as people reach them."""
        return (self.public_url or self.url(self.gateway_port)).rstrip("/")

    def url(self, port: int) -> str:
        """Loopback URL of one of the stack's services."""
        return f"http://{self.host}:{port}"


LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MIN_SECRET_CHARS = 16
# What each service needs when it listens beyond loopback (a deployment), by environment variable.
_EXPOSED_NEEDS = {
    "gateway": ["WEBCHAT_IDENTITY_SECRET", "METRICS_TOKEN", "RASA_TOKEN"],
    "nlu": ["NLU_TOKEN"],
    "actions": ["ACTION_TOKEN"],
}
# Settings that only work together: the first set needs the second.
_PAIRS = {
    "gateway": [("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"), ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN")],
    "nlu": [],
    "actions": [],
}
_SECRETS = {
    "WEBCHAT_IDENTITY_SECRET",
    "METRICS_TOKEN",
    "NLU_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "RASA_TOKEN",
    "ACTION_TOKEN",
}


def require_secrets(settings: Settings, service: str) -> None:
    """Stop ``service`` (gateway, nlu, actions) from starting with a secret missing, half-set or weak.

    On loopback (a developer's machine) only half-configured pairs are refused (a Slack token
    without its signing secret; the monitor worker checks its webhook's the same way). Listening on any other
    address (HOST=0.0.0.0, a deployment) also needs the service's own secrets, each at least
    16 characters. Secrets come from the environment (or `.env`), never from a file in the repo.
    """
    value = {name: str(getattr(settings, name.lower()) or "") for name in {n for p in _PAIRS[service] for n in p}}
    problems = [f"{a} is set but {b} is not" for a, b in _PAIRS[service] if value[a] and not value[b]]
    if settings.host not in LOOPBACK:
        for name in _EXPOSED_NEEDS[service]:
            if not getattr(settings, name.lower()):
                problems.append(f"{name} is not set (required when HOST={settings.host})")
        for name in sorted(_SECRETS & {*_EXPOSED_NEEDS[service], *value}):
            given = str(getattr(settings, name.lower()) or "")
            if given and len(given) < MIN_SECRET_CHARS:
                problems.append(f"{name} is shorter than {MIN_SECRET_CHARS} characters")
    if problems:
        raise ConfigError(f"cannot start the {service}: " + "; ".join(problems) + " (set them in the environment)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once, lazily)."""
    return Settings()
