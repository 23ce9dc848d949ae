#!/usr/bin/env bash
# Run as root by t/debian_install.t (through sudo, no arguments): the Debian
# path end to end on Debian 12's own apache2. Builds the package from this
# clone with dpkg-buildpackage, runs lintian, installs it with apt, starts the
# system apache2 without the module, enables it (a2enmod), apache2ctl -t,
# reloads (graceful), answers a request with a token made by the package's
# octo-webhooks CLI, then purges the package and checks nothing is left.
#
# Input: one line on stdin, the libpq conninfo of the test database (sudo
# passes no environment and this script takes no arguments). Output: KEY
# VALUE lines for the test.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
IFS= read -r conninfo || true
case "$conninfo" in ''|*\"*|*\\*|*$'\r'*) echo "ERROR bad conninfo on stdin"; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/../.." && pwd)
pkg=libapache2-mod-octo-webhooks
# The system apache2 is one: suites running side by side take turns here.
exec 9>/run/owh-debian-probe.lock
flock 9
work=$(mktemp -d /tmp/owh-debian.XXXXXX)
made_policy= port=80
stop_apache() {
    local pid
    pid=$(set +u; . /etc/apache2/envvars; cat "${APACHE_PID_FILE:-/var/run/apache2/apache2.pid}" 2>/dev/null || true)
    apache2ctl stop >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
cleanup() {
    stop_apache
    a2disconf -q owh-test >/dev/null 2>&1 || true
    rm -f /etc/apache2/conf-available/owh-test.conf
    sed -i 's/^#Listen 80 (owh-test)$/Listen 80/' /etc/apache2/ports.conf
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$pkg" >/dev/null 2>&1 || true
    fi
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    rm -rf "$work"
}
trap cleanup EXIT
# No maintainer script may start or restart the system apache2 behind our back.
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi

# ---- build ---------------------------------------------------------------
mkdir "$work/src"
(cd "$repo" && git ls-files -co --exclude-standard -z 2>/dev/null | tar --null -cf - -T - 2>/dev/null \
    || tar --exclude=.state --exclude=.git -cf - .) | tar -C "$work/src" -xf -
rm -rf "$work/src/debian/$pkg" "$work/src/debian/.debhelper"
if (cd "$work/src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
    echo "BUILT $(cd "$work" && ls ${pkg}_*.deb)"
else
    tail -30 "$work/build.log" | sed 's/^/BUILDLOG /'
    exit 1
fi
deb=$(ls "$work"/${pkg}_*.deb)
lintian_out=$(lintian "$work"/${pkg}_*.changes 2>&1 || true)
echo "LINTIAN_ERRORS $(printf '%s\n' "$lintian_out" | grep -c '^E:' || true)"
printf '%s\n' "$lintian_out" | grep '^E:' | sed 's/^/LINTIAN /' || true

# ---- install -------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$work/apt.log" 2>&1 \
    || { sed 's/^/APTLOG /' "$work/apt.log"; exit 1; }
for f in /usr/lib/apache2/modules/mod_octo_webhooks.so /etc/apache2/mods-available/octo_webhooks.load \
         /etc/apache2/mods-available/octo_webhooks.conf /usr/bin/octo-webhooks /usr/bin/octo-webhooks-token \
         /usr/share/man/man1/octo-webhooks.1.gz /usr/share/doc/$pkg/README.md.gz \
         /usr/share/$pkg/openapi.json; do
    [ -e "$f" ] && echo "INSTALLED $f"
done
[ -e /etc/apache2/mods-enabled/octo_webhooks.load ] || echo "NOT_ENABLED_BY_DEFAULT"

# The CLI of the package: the schema (as its owner), then a token.
export OCTO_WEBHOOKS_DB="$conninfo"
octo-webhooks migrate >/dev/null && echo "MIGRATED"
token=$(octo-webhooks token create --connection "debian-probe-$$" --abilities octo:read.webhooks --label debian-probe)
case "$token" in owh_*) echo "TOKEN made by octo-webhooks" ;; *) echo "ERROR no token"; exit 1 ;; esac

# ---- the system apache2: start without the module, enable, -t, reload ----
if (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null; then
    port=18080
    sed -i 's/^Listen 80$/#Listen 80 (owh-test)/' /etc/apache2/ports.conf
fi
{
    printf '# written by t/debian/install-and-probe.sh\nServerName 127.0.0.1\n'
    [ "$port" != 80 ] && printf 'Listen 127.0.0.1:%s\n' "$port"
    # the dispatcher runs too: root's httpd forks it, it drops to User
    printf '<IfModule mod_octo_webhooks.c>\nOctoWebhooksDatabase "%s"\nLogLevel octo_webhooks:info\n</IfModule>\n' "$conninfo"
    # The test PostgreSQL's socket directory is its user's alone (0700, no
    # TCP): the system apache2's children run as that user for the probe.
    sockdir=$(printf '%s\n' "$conninfo" | sed -n 's/.*host=\([^ ]*\).*/\1/p')
    if [ -d "$sockdir" ] && owner=$(stat -c %U "$sockdir") && [ "$owner" != root ]; then
        printf 'User %s\nGroup %s\n' "$owner" "$(id -gn "$owner")"
    fi
} > /etc/apache2/conf-available/owh-test.conf
a2enconf -q owh-test >/dev/null
apache2ctl start
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
echo "BEFORE_ENABLE $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/octo/webhooks")"
a2enmod -q octo_webhooks >/dev/null
[ -L /etc/apache2/mods-enabled/octo_webhooks.load ] && echo "ENABLED octo_webhooks"
apache2ctl -t >/dev/null 2>&1 && echo "CONFIGTEST ok"
apache2ctl graceful
status=
for _ in $(seq 1 100); do
    status=$(curl -s -o "$work/noauth" -w '%{http_code}' "http://127.0.0.1:$port/octo/webhooks" || true)
    [ "$status" = 401 ] && break
    sleep 0.1
done
echo "RELOADED"
apache2ctl -M 2>/dev/null | grep -q octo_webhooks_module && echo "LOADED octo_webhooks_module"
echo "STATUS_NOAUTH $status"
echo "BODY_NOAUTH $(tr -d '\n' < "$work/noauth")"
# The dispatcher of root's httpd: dropped to User, parent-death signal kept
# (prctl after setuid(), which clears it)
for _ in $(seq 1 50); do
    line=$(grep -ho 'OWH00507: dispatcher [^ ]* started (uid [0-9]*, parent-death signal [0-9]*)' /var/log/apache2/error.log 2>/dev/null | tail -1)
    [ -n "$line" ] && break
    sleep 0.1
done
echo "DISPATCHER_UID $(printf '%s' "$line" | sed -n 's/.*(uid \([0-9]*\),.*/\1/p')"
echo "DISPATCHER_DEATHSIG $(printf '%s' "$line" | sed -n 's/.*parent-death signal \([0-9]*\)).*/\1/p')"
echo "STATUS_AUTH $(curl -s -o "$work/auth" -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/octo/webhooks")"
echo "BODY_AUTH $(tr -d '\n' < "$work/auth")"
curl -s -o "$work/openapi.json" "http://127.0.0.1:$port/octo/openapi.json"
cmp -s "$work/openapi.json" /usr/share/$pkg/openapi.json && echo "OPENAPI served = shipped"
printf '%s\n' "$token" | octo-webhooks token revoke >/dev/null && echo "REVOKED"
# a revocation takes effect within the token cache's second
for _ in $(seq 1 50); do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/octo/webhooks")
    [ "$status" = 403 ] && break
    sleep 0.1
done
echo "STATUS_REVOKED $status"
stop_apache
echo "STOPPED"

# ---- purge: nothing left --------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$pkg" >"$work/purge.log" 2>&1 \
    || { sed 's/^/PURGELOG /' "$work/purge.log"; exit 1; }
left=$( { ls -d /etc/apache2/mods-available/octo_webhooks.* /etc/apache2/mods-enabled/octo_webhooks.* \
              /usr/lib/apache2/modules/mod_octo_webhooks.so /usr/bin/octo-webhooks /usr/bin/octo-webhooks-token \
              /usr/share/man/man1/octo-webhooks* /usr/share/doc/$pkg /usr/share/$pkg 2>/dev/null || true
          find /var/lib/apache2 -name '*octo_webhooks*' 2>/dev/null || true; } | tr '\n' ' ')
dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" && left="$left(dpkg: still installed)"
if [ -z "$left" ]; then echo "PURGED clean"; else echo "LEFT $left"; fi
apache2ctl -t >/dev/null 2>&1 && echo "CONFIGTEST_AFTER_PURGE ok"
