"""`python -m starbox.service`: run the service in the foreground (what `starbox up` starts)."""

import uvicorn

from starbox import settings as settings_mod
from starbox.service.app import create_app


def main() -> None:
    s = settings_mod.get()
    uvicorn.run(
        create_app(s),
        host=s.service_host,
        port=s.service_port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
