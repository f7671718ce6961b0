# Two commands do all set-up on a fresh machine (see README.md):
#   make run    the main job (scan a folder of DICOMs; DIR=... to choose it)
#   make test   the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DIR    ?= ../shared/data/dicom_misc

.PHONY: run test install sync bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/medfast scan $(DIR)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# regenerate the library and README from the notebooks, and strip notebook metadata/outputs
sync: $(BIN)/.installed
	cd nbs && $(abspath $(BIN))/nbdev-export && $(abspath $(BIN))/nbdev-clean
	$(BIN)/python tools/readme.py

bench: $(BIN)/.installed
	$(BIN)/python bench/decoders.py
	$(BIN)/python bench/dicom_read.py

clean:
	rm -rf $(VENV) build dist *.egg-info
