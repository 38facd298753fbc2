# The two commands of the README, plus the pieces they are made of.
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	bash -c 'source scripts/env.sh && python -m vpr_ros demo'

test: setup
	bash -c 'source scripts/env.sh && python -m pytest test -q -p no:cacheprovider'

lint: setup
	bash -c 'source scripts/env.sh && flake8 vpr_ros test launch scripts/query_encoder scripts/gallery_server scripts/matcher scripts/vpr-ros'
