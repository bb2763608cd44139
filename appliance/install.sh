#!/usr/bin/env bash
# The install steps shared by `make up`, `make test`, the Dockerfile, Binder and the Nix flake.
# Usage: appliance/install.sh [--test] [--hub] [--no-apt] [--no-venv]
#   --test     also install what the test suite needs (browser, STILTS, test libraries; and --hub)
#   --hub      also install what shared mode needs (`starbox up --shared`): JupyterHub's proxy and
#              the labs' own Python environment, root-owned and readable by every user
#   --no-apt   skip Debian packages (Binder installs them from binder/apt.txt)
#   --no-venv  install the Python packages into the current interpreter (images)
# It only does work that is missing, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0 with_hub=0 apt=1 venv=1
for arg in "$@"; do
  case "$arg" in
    --test) with_test=1; with_hub=1 ;;
    --hub) with_hub=1 ;;
    --no-apt) apt=0 ;;
    --no-venv) venv=0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

apt_packages=$(grep -v '^#' appliance/apt-packages.txt)
if [ "$with_test" = 1 ]; then
  apt_packages="$apt_packages $(grep -v '^#' appliance/apt-packages-test.txt)"
fi

# Node.js and npm build the Voilà app page (below); any recent Node.js will do (>= 18).
command -v npm >/dev/null || apt_packages="$apt_packages nodejs npm"

if [ "$apt" = 1 ]; then
  missing=()
  for pkg in $apt_packages; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

extras="."
[ "$with_test" = 1 ] && extras=".[test]"
if [ "$venv" = 1 ]; then
  venv_dir="${STARBOX_VENV:-.venv}"
  [ -x "$venv_dir/bin/python" ] || { echo "==> creating $venv_dir"; python3 -m venv "$venv_dir"; }
  python="$venv_dir/bin/python"
else
  python="${PYTHON:-python3}"
fi
# The real astro-datalab client, for the compatibility tests: its own environment, because it
# needs Python < 3.12 and old pins (numpy < 1.26.4, pandas < 2.2, astropy < 5.4).
if [ "$with_test" = 1 ] && [ "$venv" = 1 ]; then
  dl_venv="${STARBOX_DL_VENV:-.venv-datalab}"
  if [ ! -x "$dl_venv/bin/python" ] || ! "$dl_venv/bin/python" -c "import dl" 2>/dev/null; then
    echo "==> installing the astro-datalab client into $dl_venv"
    python3 -m venv "$dl_venv"
    "$dl_venv/bin/python" -m pip install -q --disable-pip-version-check astro-datalab==2.24.0
  fi
fi

# Reinstall only when the pinned dependencies change; the stamp lives in the environment itself.
stamp="$("$python" -c 'import sys; print(sys.prefix)')/.starbox-installed-$(echo "$extras" | tr -c 'a-z' '_')"
digest=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "==> installing Python packages ($extras)"
  "$python" -m pip install -q --disable-pip-version-check -e "$extras"
  echo "$digest" > "$stamp"
fi

# Starbox's Voilà app page (appliance/voila-page): bundled from the pinned npm packages of its
# package-lock.json; rebuilt only when its sources change.
page_src=appliance/voila-page
page_out=appliance/jupyter/share/voila/templates/starbox/static
page_digest=$(cat "$page_src/package.json" "$page_src/package-lock.json" "$page_src"/src/* | sha256sum | cut -c1-16)
if [ "$(cat "$page_out/.built" 2>/dev/null)" != "$page_digest" ]; then
  echo "==> building the Voilà app page"
  (cd "$page_src" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  echo "$page_digest" > "$page_out/.built"
fi

# The user manual (docs/), served by the service at /docs/: built with Sphinx (a dependency of the
# package, so `make up` has it too), rebuilt only when its sources or the documented toolkit change.
docs_out=docs/_build/html
if "$python" -c "import sphinx, myst_parser" 2>/dev/null; then
  docs_digest=$(find docs -path docs/_build -prune -o -type f -print | sort | xargs cat \
    toolkit/starbox/authClient.py toolkit/starbox/queryClient.py toolkit/starbox/storeClient.py \
    toolkit/starbox/settings.py toolkit/starbox/cli.py toolkit/starbox/service/routers/*.py \
    | sha256sum | cut -c1-16)
  if [ "$(cat "$docs_out/.built" 2>/dev/null)" != "$docs_digest" ]; then
    # Warnings fail `make test` (tests/test_docs.py), not the install: a manual with a broken
    # link must not keep the appliance from starting.
    echo "==> building the user manual"
    if "$python" -m sphinx -q -b html docs "$docs_out"; then
      echo "$docs_digest" > "$docs_out/.built"
    else
      echo "==> the user manual did not build (see above); /docs/ says how to build it"
    fi
  fi
else
  echo "==> the user manual needs Sphinx (a dependency of the package: rerun appliance/install.sh); /docs/ says how to build it"
fi

# Shared mode: JupyterHub's configurable-http-proxy (pinned in its package-lock.json), and the
# labs' Python environment at hub_env. The labs run as users' own Unix users, so it is built
# from the system's Python (every user can run it; a Python under /root cannot), owned by root,
# and holds a copy of the toolkit, refreshed when the toolkit changes.
if [ "$with_hub" = 1 ]; then
  proxy=appliance/hub-proxy
  proxy_digest=$(cat "$proxy/package.json" "$proxy/package-lock.json" | sha256sum | cut -c1-16)
  if [ "$(cat "$proxy/node_modules/.built" 2>/dev/null)" != "$proxy_digest" ]; then
    echo "==> installing JupyterHub's proxy"
    (cd "$proxy" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$proxy_digest" > "$proxy/node_modules/.built"
  fi
  hub_env=$("$python" -c 'from starbox import settings; print(settings.get().hub_env)')
  system_python=/usr/bin/python3
  [ -x "$system_python" ] || system_python=$(command -v python3)
  if [ ! -x "$hub_env/bin/python" ]; then
    echo "==> creating the labs' environment in $hub_env"
    mkdir -p "$(dirname "$hub_env")"
    "$system_python" -m venv "$hub_env"
  fi
  hub_digest=$( (cat pyproject.toml; find toolkit -name '*.py' -newer /dev/null -print0 | sort -z | xargs -0 cat) \
    | sha256sum | cut -c1-16)
  if [ "$(cat "$hub_env/.starbox-installed" 2>/dev/null)" != "$hub_digest" ]; then
    echo "==> installing Starbox into the labs' environment"
    "$hub_env/bin/python" -m pip install -q --disable-pip-version-check . jupyterhub==6.1.1
    "$hub_env/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall .
    echo "$hub_digest" > "$hub_env/.starbox-installed"
  fi
  chmod -R go-w "$hub_env"
  # The "Data Lab client" kernel: the real astro-datalab (old pins: its own environment), from the
  # system's Python too, registered with the hub like any admin's kernel.
  read -r dl_env dl_spec < <("$python" -c 'from starbox import settings; from starbox.jupyter.hub.paths import datalab_env
from starbox.jupyter.hub.kernels import registry
s = settings.get(); print(datalab_env(s), registry(s) / "datalab" / "kernel.json")')
  dl_stamp="$dl_env/.starbox-installed"
  dl_digest=$(cat appliance/hub/datalab_sitecustomize.py | sha256sum | cut -c1-16)
  if [ "$(cat "$dl_stamp" 2>/dev/null)" != "$dl_digest" ] || [ ! -x "$dl_env/bin/python" ]; then
    echo "==> installing the Data Lab client kernel into $dl_env"
    mkdir -p "$(dirname "$dl_env")"
    [ -x "$dl_env/bin/python" ] || "$system_python" -m venv "$dl_env"
    "$dl_env/bin/python" -m pip install -q --disable-pip-version-check astro-datalab==2.24.0 ipykernel==6.29.5
    cp appliance/hub/datalab_sitecustomize.py \
      "$("$dl_env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sitecustomize.py"
    chmod -R go-w,a+rX "$dl_env"
    echo "$dl_digest" > "$dl_stamp"
  fi
  if [ ! -f "$dl_spec" ]; then
    "$python" -c "from starbox.cli import main; main()" kernels add datalab "$dl_env/bin/python" --display-name "Data Lab client" >/dev/null
  fi
fi
