# PostgreSQL stopped mid-run: 503 with an OCTO error, no child crashes, and
# recovery by itself when it returns.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;

my $tok = token("outage-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $w = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://e.com/outage' })->{json};
ok($w->{id}, 'created before the outage');

pg_stop();
my $r;
for (1 .. 3) { $r = api('GET', '/webhooks', token => $tok) }
is($r->{code}, 503, 'database down: 503');
is($r->{json}{error}, 'INTERNAL_SERVER_ERROR', 'OCTO error code');
ok(length $r->{json}{errorMessage}, 'with a message');
ok($r->{headers}->header('Retry-After'), 'Retry-After');
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://e.com/x' });
is($r->{code}, 503, 'writes too');
$r = api('GET', '/webhooks');
is($r->{code}, 401, 'a request without token still gets its 401');
$r = api('GET', '/nowhere', token => $tok);
is($r->{code}, 404, 'routing still works');
pg_start();

my $code = 0;
wait_until(sub { ($code = api('GET', '/webhooks', token => $tok)->{code}) == 200 }, 10);
is($code, 200, 'recovered by itself');
$r = api('GET', "/webhooks/$w->{id}", token => $tok);
is($r->{json}{url}, 'https://e.com/outage', 'data from before the outage is there');
# every pooled connection of every child died: none may leak a failure
my %codes;
$codes{ api('GET', '/webhooks', token => $tok)->{code} }++ for 1 .. 30;
is_deeply(\%codes, { 200 => 30 }, 'thirty requests after recovery all succeed');
done_testing();
