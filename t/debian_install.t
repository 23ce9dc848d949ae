# The Debian path on the real system apache2: make install, a2enmod, start,
# one request without and one with a token, stop (t/debian/install-and-probe.sh,
# run as root through the sudo rule bin/owh test installs).
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
plan tests => 11;

my $token = token("debian-$$", ['octo:read.webhooks']);
# the sudo rule takes no arguments: the input goes on stdin
my $in = File::Temp->new;
print $in "$ENV{OWH_TEST_CONNINFO}\n$token\n";
close $in;
my $out = `sudo -n $script < $in 2>&1`;
diag($out) if $?;
my %kv;
for (split /\n/, $out) { my ($k, $v) = split / /, $_, 2; push @{ $kv{$k} }, $v if defined $k }

ok(grep({ $_ eq '/usr/lib/apache2/modules/mod_octo_webhooks.so' } @{ $kv{INSTALLED} || [] }), 'apxs installed the module');
ok(grep({ /octo_webhooks\.load$/ } @{ $kv{INSTALLED} || [] }), 'octo_webhooks.load in mods-available');
ok(grep({ /octo_webhooks\.conf$/ } @{ $kv{INSTALLED} || [] }), 'octo_webhooks.conf in mods-available');
ok($kv{ENABLED}, 'a2enmod octo_webhooks');
ok($kv{CONFIGTEST}, 'apache2ctl configtest');
ok($kv{LOADED}, 'apache2ctl -M lists octo_webhooks_module');
is($kv{STATUS_NOAUTH}[0], '401', 'no token: 401 from the system apache2');
like($kv{BODY_NOAUTH}[0] // '', qr/"error":"UNAUTHORIZED"/, 'OCTO error body');
is($kv{STATUS_AUTH}[0], '200', 'token: 200');
is($kv{BODY_AUTH}[0], '[]', 'the new connection has no webhooks');
ok($kv{STOPPED}, 'system apache2 stopped');
