# Two commands do all set-up on a fresh machine (see README.md):
#   make run    the main job: train the chest X-ray model, evaluate it, write a run folder with its report
#   make test   the whole test suite, one worker per core (at most 4; JOBS=1: one by one); SLOW=1 also runs the slow cells and the tutorials at full size
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= $(or $(MEDFAST_DATA),../shared/data)/chest_xray_224/train
PRESET ?= chest_xray
RECIPE ?= xray_quick
RUN    ?= runs/$(notdir $(patsubst %/,%,$(dir $(DATA))))-$(shell date +%Y%m%d-%H%M%S)
SLOW   ?=
JOBS   ?= $(shell $(PYTHON) -c 'import os; print(min(4, os.cpu_count() or 1))')

.PHONY: run test install sync bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	@test -d "$(DATA)" || { echo "make run: no images at $(DATA)." >&2; \
	  echo "  Put the training split of Kaggle's 'Chest X-Ray Images (Pneumonia)' there (two folders, NORMAL/ and PNEUMONIA/, of images)," >&2; \
	  echo "  or set MEDFAST_DATA to a folder holding chest_xray_224/train, or run: make run DATA=path/to/class/folders PRESET=" >&2; exit 1; }
	$(BIN)/medfast train --folder $(DATA) $(if $(PRESET),--preset $(PRESET)) --recipe $(RECIPE) --run $(RUN)

test: $(BIN)/.installed
	MEDFAST_SLOW=$(SLOW) $(BIN)/python -m pytest $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist loadgroup)

# regenerate the library and README from the notebooks, strip notebook metadata, and BENCHMARKS.md from bench/results
sync: $(BIN)/.installed
	cd nbs && $(abspath $(BIN))/nbdev-export && $(abspath $(BIN))/nbdev-clean
	$(BIN)/python tools/readme.py
	$(BIN)/python tools/benchmarks.py

# every benchmark, then BENCHMARKS.md from their JSON (about an hour and a half on 2 CPU cores)
bench: $(BIN)/.installed
	for b in decoders dicom_read chest_xray retinopathy volumes detection; do $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python tools/benchmarks.py

clean:
	rm -rf $(VENV) build dist *.egg-info
