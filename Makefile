# hozon: the two commands of README.md are `make run` and `make test`.
# Both install what is missing first (scripts/setup.sh), then build.

CARGO ?= cargo
DATA ?= ./data
ADDR ?= 127.0.0.1:8080
DEMO_SUBMISSIONS ?= 10
HOZON = ./target/release/hozon --data $(DATA)

.PHONY: setup build run test lint install

PREFIX ?= /usr/local

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

# Main job: a served UI with searchable demo data.
run: build
	@$(HOZON) init --if-missing
	@if [ ! -e $(DATA)/.demo-generated ]; then \
	  echo "デモ用の合成スキャンを作成します ($(DEMO_SUBMISSIONS) 件)"; \
	  $(HOZON) synth --out $(DATA)/inbox --count $(DEMO_SUBMISSIONS) --seed 42 && touch $(DATA)/.demo-generated; \
	fi
	@if [ -d $(DATA)/inbox ]; then \
	  batch=$$($(HOZON) batch new --municipality 新宿区 --channel 交換便 --pages $$(ls $(DATA)/inbox/*.png | wc -l) --note デモ); \
	  $(HOZON) ingest $(DATA)/inbox --batch $$batch; \
	  rm -f $(DATA)/inbox/truth.jsonl; rmdir $(DATA)/inbox 2>/dev/null || true; \
	fi
	@echo "ブラウザで http://$(ADDR)/ を開いてください (ユーザーID admin; パスワードは初回 init 時に表示。再発行: $(HOZON) user reset-password admin)"
	@echo "検索の例: 大腸炎 / パーキンソン / 新宿区"
	$(HOZON) serve --addr $(ADDR)

# Tests: unit tests beside the code, end-to-end tests in tests/it.
test: setup
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The binary and its resources under PREFIX (bin/, share/hozon/, the systemd unit).
install: build
	bash scripts/install.sh $(PREFIX) target/release/hozon
