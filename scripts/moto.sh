# Sourced by scripts/test.sh and scripts/bench-aws-iam.sh (not run on its own): start moto's
# AWS API emulator (`moto_server`, PyPI `moto[server]`) on a free loopback port, log to
# "$workdir/moto.log", set moto_pid (the caller kills it) and export POSTURED_TEST_MOTO_URL.
# Needs: $workdir.

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
moto_ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /moto-api/ HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q ' 200') 2>/dev/null
}
if ! command -v moto_server >/dev/null 2>&1; then
  echo "== installing moto[server] (pip)"
  python3 -m pip install --quiet 'moto[server]'
fi
for _ in $(seq 1 50); do
  moto_port=$((20000 + RANDOM % 40000))
  port_in_use "$moto_port" || break
done
moto_server -H 127.0.0.1 -p "$moto_port" >"$workdir/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
  moto_ready "$moto_port" && break
  sleep 0.1
done
if ! moto_ready "$moto_port"; then
  echo "moto_server did not start:"; cat "$workdir/moto.log"; exit 1
fi
export POSTURED_TEST_MOTO_URL="http://127.0.0.1:$moto_port"
echo "== moto_server at $POSTURED_TEST_MOTO_URL"
