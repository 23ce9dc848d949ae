#!/usr/bin/env bash
# Run as root by t/debian_install.t (through sudo): installs the module into
# Debian's own apache2 the documented way — make install, a2enmod — starts the
# system apache2, makes one request without and one with a token, stops it
# and removes what it installed. Prints KEY VALUE lines for the test.
#   usage: install-and-probe.sh < input   (two lines: CONNINFO, TOKEN)
# The sudo rule bin/owh test writes takes no arguments: the input comes on stdin.
set -euo pipefail
IFS= read -r conninfo || true
IFS= read -r token || true
[ -n "$conninfo" ] && [ -n "$token" ] || { echo "ERROR give CONNINFO and TOKEN on stdin"; exit 2; }
case "$conninfo" in *$'\n'*|*\"*) echo "ERROR bad conninfo"; exit 2 ;; esac
case "$token" in owh_*) ;; *) echo "ERROR bad token"; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/../.." && pwd)
# The system apache2 is one: suites running side by side take turns here.
exec 9>/run/owh-debian-probe.lock
flock 9
work=$(mktemp -d /tmp/owh-debian.XXXXXX)
port=
cleanup() {
    apache2ctl stop >/dev/null 2>&1 || true
    sleep 0.5
    a2disconf -q owh-test >/dev/null 2>&1 || true
    a2dismod -q octo_webhooks >/dev/null 2>&1 || true
    rm -f /etc/apache2/conf-available/owh-test.conf /etc/apache2/mods-available/octo_webhooks.load \
          /etc/apache2/mods-available/octo_webhooks.conf /usr/lib/apache2/modules/mod_octo_webhooks.so \
          /usr/local/bin/octo-webhooks-token
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && git ls-files -co --exclude-standard -z 2>/dev/null | tar --null -cf - -T - 2>/dev/null || tar --exclude=.state --exclude=.git -cf - .) | tar -C "$work" -xf -
cd "$work"
autoreconf -fi >/dev/null 2>&1
./configure -q >/dev/null
make -s -j2 >/dev/null 2>&1
make -s install >/dev/null
[ -f /usr/lib/apache2/modules/mod_octo_webhooks.so ] && echo "INSTALLED /usr/lib/apache2/modules/mod_octo_webhooks.so"
[ -f /etc/apache2/mods-available/octo_webhooks.load ] && echo "INSTALLED /etc/apache2/mods-available/octo_webhooks.load"
[ -f /etc/apache2/mods-available/octo_webhooks.conf ] && echo "INSTALLED /etc/apache2/mods-available/octo_webhooks.conf"
a2enmod -q octo_webhooks
[ -L /etc/apache2/mods-enabled/octo_webhooks.load ] && echo "ENABLED octo_webhooks"

# Debian listens on 80; use another port if it is taken.
port=80
if (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null; then port=18080; fi
{
    printf 'OctoWebhooksDatabase "%s"\nOctoWebhooksDispatcher Off\n' "$conninfo"
    [ "$port" != 80 ] && printf 'Listen 127.0.0.1:%s\n' "$port"
    printf 'ServerName 127.0.0.1\n'
    # The test PostgreSQL's socket directory is its user's alone (0700, no
    # TCP): the system apache2's children run as that user for the probe.
    sockdir=$(printf '%s\n' "$conninfo" | sed -n 's/.*host=\([^ ]*\).*/\1/p')
    if [ -d "$sockdir" ] && owner=$(stat -c %U "$sockdir") && [ "$owner" != root ]; then
        printf 'User %s\nGroup %s\n' "$owner" "$(id -gn "$owner")"
    fi
} > /etc/apache2/conf-available/owh-test.conf
a2enconf -q owh-test
if [ "$port" != 80 ]; then sed -i 's/^Listen 80$/#Listen 80 (owh-test)/' /etc/apache2/ports.conf; trap 'sed -i "s/^#Listen 80 (owh-test)$/Listen 80/" /etc/apache2/ports.conf; cleanup' EXIT; fi
apache2ctl configtest >/dev/null 2>&1 && echo "CONFIGTEST ok"
apache2ctl start
for i in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
echo "STATUS_NOAUTH $(curl -s -o "$work/noauth" -w '%{http_code}' "http://127.0.0.1:$port/octo/webhooks")"
echo "BODY_NOAUTH $(tr -d '\n' < "$work/noauth")"
echo "STATUS_AUTH $(curl -s -o "$work/auth" -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/octo/webhooks")"
echo "BODY_AUTH $(tr -d '\n' < "$work/auth")"
apache2ctl -M 2>/dev/null | grep -q octo_webhooks_module && echo "LOADED octo_webhooks_module"
syspid=$(set +u; . /etc/apache2/envvars; cat "${APACHE_PID_FILE:-/var/run/apache2/apache2.pid}" 2>/dev/null || true)
apache2ctl stop
for i in $(seq 1 50); do [ -n "$syspid" ] && kill -0 "$syspid" 2>/dev/null || break; sleep 0.1; done
[ -n "$syspid" ] && ! kill -0 "$syspid" 2>/dev/null && echo "STOPPED"
