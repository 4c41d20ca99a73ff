# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SWAGGER_UI := services/static/vendor/swagger-ui
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_TMP := var/swagger-ui-dist

.PHONY: run test lint format bench schemas clean postgis browser kafka

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP) $(SWAGGER_UI)/swagger-ui-bundle.js
	$(BIN)/waystation demo

# The interactive API docs (/docs) are served from Swagger UI's files, taken from the npm
# package at install time (not kept in the repository), so that they work offline.
$(SWAGGER_UI)/swagger-ui-bundle.js:
	rm -rf $(SWAGGER_UI_TMP) && mkdir -p $(SWAGGER_UI_TMP)
	cd $(SWAGGER_UI_TMP) && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null \
	  && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz
	cp $(SWAGGER_UI_TMP)/package/swagger-ui.css $(SWAGGER_UI_TMP)/package/swagger-ui-bundle.js.LICENSE.txt \
	  $(SWAGGER_UI_TMP)/package/LICENSE $(SWAGGER_UI_TMP)/package/NOTICE $(SWAGGER_UI)/
	cp $(SWAGGER_UI_TMP)/package/swagger-ui-bundle.js $(SWAGGER_UI)/
	rm -rf $(SWAGGER_UI_TMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# PostGIS for the tests and benchmarks: installs Debian's packages when missing (as root), or
# says what to install. The tests start and stop a private cluster under ./var/postgis/.
postgis: $(STAMP)
	$(BIN)/python -m tools.postgis_cluster install

# Apache Kafka for the distributed tests and benchmarks: java and mvn from Debian when missing
# (as root), then the broker's jars from Maven Central into ~/.cache/waystation (once). The
# tests start and stop private brokers under ./var/kafka/.
kafka: $(STAMP)
	$(BIN)/python -m tools.kafka_broker install

# The browser tests and the dashboard benchmark drive Debian's chromium through Playwright
# (`playwright install` cannot download here), with a Chinese font so that the page's default
# language renders. Installed when missing and we are root.
CHROMIUM := /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@if [ ! -x $(CHROMIUM) ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	  else \
	    echo "install $(BROWSER_PACKAGES) for the browser tests"; \
	  fi; \
	fi

test: lint postgis kafka browser $(SWAGGER_UI)/swagger-ui-bundle.js
	$(BIN)/pytest

schemas: $(STAMP)
	$(BIN)/waystation schemas export

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis .import_linter_cache

bench: postgis kafka browser $(SWAGGER_UI)/swagger-ui-bundle.js
	$(BIN)/python -m bench.run
