#!/bin/sh
# A steady stream of HTTPS requests with the good test certificate, one new
# connection each, for the zero-loss test.
#
#   mtls-test-load MAX_REQUESTS MAX_SECONDS STATE_DIR URL
#
# Stops by itself after MAX_REQUESTS or MAX_SECONDS, or earlier when
# STATE_DIR/stop appears. STATE_DIR/counts holds "sent=N failed=M" after
# every request; STATE_DIR/failures one line per failed request.
set -u
max=$1
seconds=$2
dir=$3
url=$4
creds=/etc/fleet-mtls/test-clients
mkdir -p "$dir"
rm -f "$dir/stop" "$dir/failures" "$dir/counts"
end=$(($(date +%s) + seconds))
sent=0
failed=0
while [ "$sent" -lt "$max" ] && [ "$(date +%s)" -lt "$end" ] && [ ! -e "$dir/stop" ]; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$creds/ca-bundle.pem" \
    --cert "$creds/good.crt" --key "$creds/good.key" "$url") || true
  sent=$((sent + 1))
  if [ "$code" != 200 ]; then
    failed=$((failed + 1))
    echo "$(date +%T.%N) request $sent: $code" >>"$dir/failures"
  fi
  echo "sent=$sent failed=$failed" >"$dir/counts.new"
  mv "$dir/counts.new" "$dir/counts"
  sleep 0.02
done
