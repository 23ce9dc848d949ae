# Retries then success, retryOnError false, exhausted retries, and every
# attempt recorded.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksRetrySchedule "1s 1s"');
my $sink = start_sink();
my $tok = token('res-r', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$sink->behave('/flaky', codes => [500, 503, 200]);
$sink->behave('/dead', codes => [500]);
$sink->behave('/once', codes => [500, 200]);
my %wh;
for my $p ('flaky', 'dead', 'once') {
    $wh{$p} = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
        event => 'product_update', url => $sink->url("/$p"),
        ($p eq 'once' ? (retryOnError => JSON::PP::false) : ()) })->{json}{id};
}
emit($db, 'product_update', { id => 'p-r' });

my $flaky = $sink->wait_for(path => '/flaky', count => 3, timeout => 15);
is(scalar @$flaky, 3, 'failed twice, then succeeded on the third attempt');
my %ids = map { $_->{headers}{'webhook-id'} => 1 } @$flaky;
is(scalar keys %ids, 1, 'the same webhook-id on every retry');
my $gap = $flaky->[1]{time} - $flaky->[0]{time};
ok($gap > 0.6 && $gap < 3, "retried after the schedule's 1s (+-20%): ${gap}s");

# once the three deliveries are final no attempt can follow
ok(wait_settled($db, 15), 'every delivery ended');
is(scalar @{ $sink->requests('/dead') }, 3, 'no more than 1 + 2 retries');
is(scalar @{ $sink->requests('/once') }, 1, 'retryOnError false: one attempt');
my %st = map { $_->[0] => [ @$_[1 .. 3] ] } @{ q_at($db,
    'SELECT webhook_id, status, attempts, last_error FROM octo_webhooks.deliveries') };
is_deeply($st{ $wh{flaky} }, [ 'succeeded', 3, '' ], 'flaky: succeeded after 3 attempts');
is_deeply($st{ $wh{dead} }, [ 'failed', 3, 'HTTP 500' ], 'dead: failed after 3 attempts, last error kept');
is_deeply($st{ $wh{once} }, [ 'failed', 1, 'HTTP 500' ], 'once: failed after 1 attempt');
my $att = q_at($db, 'SELECT a.attempt, a.status_code, a.response_excerpt FROM octo_webhooks.attempts a'
                  . ' JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1 ORDER BY a.attempt', $wh{flaky});
is_deeply($att, [ [1, 500, 'sink says 500'], [2, 503, 'sink says 503'], [3, 200, 'sink says 200'] ], 'every attempt recorded');

# an endpoint that is not there: a transport error, recorded
my $gone = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => 'http://127.0.0.1:' . free_port() . '/nobody', retryOnError => JSON::PP::false })->{json}{id};
emit($db, 'booking_update', { uuid => 'b-gone' }, 'res-r');
my $row = wait_until(sub { q_at($db, q{SELECT status, last_error FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status <> 'pending'}, $gone)->[0] }, 10);
is($row->[0], 'failed', 'connection refused: failed');
like($row->[1], qr/connect/i, 'with the transport error');
done_testing();
