"""Dead-man's-switch pings for cron monitors (healthchecks.io convention).

`ping_url/start` when a run begins, `ping_url` when it ends well, `ping_url/fail` when it
fails. A ping that does not get through is a warning: monitoring must never fail a run.
"""

from __future__ import annotations

from typing import Optional

from csvreport import log


def ping(url: Optional[str], suffix: str = "", timeout: float = 10.0, body: str = "") -> bool:
    if not url:
        return False
    # Imported here: HTTP with TLS is 0.01 s of start-up, and most runs have no monitor to ping.
    import http.client
    import urllib.error
    import urllib.request

    target = url + (f"/{suffix}" if suffix else "")
    request = urllib.request.Request(target, data=body.encode("utf-8")[:10000] or None,
                                     headers={"User-Agent": "csvreport"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
        return True
    # HTTPException: a monitor (or a proxy) answering something that is not HTTP.
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        log.warning("monitor", f"ping to the cron monitor failed: {exc}", url=_redact(target))
        return False


def _redact(url: str) -> str:
    # The ping URL's path is a secret token of the monitor: log only its first characters.
    head, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return f"{head}://{host}/{path[:6]}…" if path else url
