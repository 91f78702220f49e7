#!/usr/bin/env bash
# Build the deployable artifacts: scripts/package.sh [STAGE] [OUT_DIR]   (make package STAGE=prod)
#   OUT_DIR/sam.json               Chalice's SAM template merged with infra/resources.json
#   OUT_DIR/deployment.zip         app.py + chalicelib/
#   OUT_DIR/layer-deployment.zip   requirements.txt as Lambda (manylinux, python3.12) wheels
# adds .pyc files to both zips (infra.compile_package: Lambda cannot write them), then checks them: infra.check_package (Pillow from a manylinux wheel, runtime, merge) and cfn-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-prod}
out=${2:-build/$stage}
py=${PY:-.venv/bin/python}
bin=$(dirname "$py")

rm -rf "$out"
# The slim botocore data ships in chalicelib/ (for the layer's botocore, which requirements.txt pins).
"$py" -m chalicelib.aws.botocore_data
mkdir -p "$(dirname "$out")"
# `chalice package` talks to no AWS API, but botocore wants a region and credentials to exist:
# dummy ones, so a machine's real profile is never read (and none is needed).
env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL \
  AWS_ACCESS_KEY_ID=packaging AWS_SECRET_ACCESS_KEY=packaging AWS_DEFAULT_REGION=us-east-1 \
  "$bin/chalice" package --stage "$stage" --merge-template infra/resources.json "$out"
"$py" -m infra.stack_parameters "$out"
"$py" -m infra.compile_package "$out"
"$py" -m infra.check_package "$out"
"$bin/cfn-lint" "$out/sam.json"
echo "cfn-lint: $out/sam.json clean"
