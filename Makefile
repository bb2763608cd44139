# The README's commands. Each installs what is missing first (apt-get, .venv, pip), so both
# work on a fresh machine; see appliance/install.sh.
SHELL := /bin/bash
VENV ?= .venv

.PHONY: up test bench install install-test down status

up: install
	$(VENV)/bin/starbox up

test: install-test
	$(VENV)/bin/pytest

bench: install-test
	$(VENV)/bin/python -m bench

install:
	./appliance/install.sh

install-test:
	./appliance/install.sh --test

down:
	$(VENV)/bin/starbox down

status:
	$(VENV)/bin/starbox status
