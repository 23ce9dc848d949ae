# The Debian path on the real system apache2 (t/debian/install-and-probe.sh,
# run as root through the sudo rule bin/owh test installs): the package is
# built with dpkg-buildpackage and passes lintian without errors, installs
# with apt, is not enabled until a2enmod, passes apache2ctl -t, is loaded by
# a graceful reload, answers with a token made by its CLI (and serves the
# OpenAPI document it ships), and purges without leaving a file behind.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use File::Temp ();

my $script = "$ENV{OWH_REPO}/t/debian/install-and-probe.sh";
my $can = system("sudo -n -l $script >/dev/null 2>&1") == 0;
if (!$can && !$ENV{CI}) {
    plan skip_all => "needs root: run bin/owh test as root (sudo rule for $script)";
}
plan tests => 30;

# The conninfo on stdin: the script takes no arguments (the sudo rule allows none).
my $in = File::Temp->new;
print $in "$ENV{OWH_TEST_CONNINFO}\n";
close $in;
my $out = `sudo -n $script < $in 2>&1`;
my $rc = $?;
diag($out) if $rc;
my %kv;
for (split /\n/, $out) { my ($k, $v) = split / /, $_, 2; push @{ $kv{$k} }, $v // '' if defined $k }
my %installed = map { $_ => 1 } @{ $kv{INSTALLED} || [] };

is($rc, 0, 'the probe ran to the end');
like($kv{BUILT}[0] // '', qr/^libapache2-mod-octo-webhooks_[0-9][^_]*_[a-z0-9]+\.deb$/,
     'dpkg-buildpackage -us -uc -b: libapache2-mod-octo-webhooks_<version>_<arch>.deb');
is($kv{LINTIAN_ERRORS}[0], '0', 'lintian: no errors') or diag(join "\n", @{ $kv{LINTIAN} || [] });
for my $f ('/usr/lib/apache2/modules/mod_octo_webhooks.so', '/etc/apache2/mods-available/octo_webhooks.load',
           '/etc/apache2/mods-available/octo_webhooks.conf', '/usr/bin/octo-webhooks', '/usr/bin/octo-webhooks-token',
           '/usr/share/man/man1/octo-webhooks.1.gz', '/usr/share/doc/libapache2-mod-octo-webhooks/README.md.gz',
           '/usr/share/libapache2-mod-octo-webhooks/openapi.json') {
    ok($installed{$f}, "installed $f");
}
ok($kv{NOT_ENABLED_BY_DEFAULT}, 'not enabled until configured (dh_apache2 --noenable)');
ok($kv{MIGRATED}, 'octo-webhooks migrate');
ok($kv{TOKEN}, 'a token made by octo-webhooks token create');
is($kv{BEFORE_ENABLE}[0], '404', 'the system apache2 ran without the module first');
ok($kv{ENABLED}, 'a2enmod octo_webhooks');
ok($kv{CONFIGTEST}, 'apache2ctl -t');
ok($kv{RELOADED} && $kv{LOADED}, 'apache2ctl graceful loaded octo_webhooks_module');
is($kv{STATUS_NOAUTH}[0], '401', 'no token: 401 from the system apache2');
like($kv{BODY_NOAUTH}[0] // '', qr/"error":"UNAUTHORIZED"/, 'OCTO error body');
isnt($kv{DISPATCHER_UID}[0] // '0', '0', "root's httpd: the dispatcher runs as User, not root");
is($kv{DISPATCHER_DEATHSIG}[0] // '', '15', 'and still has its parent-death signal (SIGTERM) after the drop');
is($kv{STATUS_AUTH}[0], '200', "the CLI's token: 200");
is($kv{BODY_AUTH}[0], '[]', 'the new connection has no webhooks');
ok($kv{OPENAPI}, 'GET /octo/openapi.json is the document the package ships');
ok($kv{REVOKED}, 'octo-webhooks token revoke (token on stdin)');
is($kv{STATUS_REVOKED}[0], '403', 'the revoked token: 403');
ok($kv{STOPPED}, 'system apache2 stopped');
is($kv{PURGED}[0] // "left: @{ $kv{LEFT} || [] }", 'clean', 'apt-get purge leaves nothing behind');
ok($kv{CONFIGTEST_AFTER_PURGE}, 'apache2ctl -t after the purge');
