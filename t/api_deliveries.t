# The attempt log resellers read: GET /webhooks/{id}/deliveries (newest
# first, cursor pagination, status filter, attempts), retry of one delivery,
# recover of failed ones since a time; all scoped to the connection.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use POSIX qw(strftime);

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksRetrySchedule 200ms');
my $sink = start_sink();
my $tok = token('res-d', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $ro = token('res-d', ['octo:read.webhooks'], db => $db);
my $other = token('res-e', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$sink->behave('/log', codes => [500, 500, 200]);      # the first delivery: 2 attempts, failed
my $id = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => $sink->url('/log') })->{json}{id};
my $oid = api('POST', '/webhooks', base => $h->base, token => $other, json => {
    event => 'product_update', url => $sink->url('/theirs') })->{json}{id};

emit($db, 'product_update', { id => 'p-0' });
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'failed'}, $id)->[0][0] == 1 }, 10);
my $since = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 60));
emit($db, 'product_update', { id => "p-$_" }) for 1 .. 5;
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'succeeded'}, $id)->[0][0] == 5 }, 10);

my $r = api('GET', "/webhooks/$id/deliveries", base => $h->base, token => $ro);
is($r->{code}, 200, 'listed with the read ability');
my $list = $r->{json}{deliveries};
is(scalar @$list, 6, 'all six');
is_deeply([ map { $_->{objectKey} } @$list ], [ map { "p-$_" } reverse 0 .. 5 ], 'newest first');
is($r->{json}{nextCursor}, undef, 'no next page');
my $failed = $list->[-1];
is($failed->{status}, 'failed', 'the first one failed');
is($failed->{attemptCount}, 2, 'after 2 attempts');
is(scalar @{ $failed->{attempts} }, 2, 'both attempts listed');
my $a1 = $failed->{attempts}[0];
is($a1->{attempt}, 1, 'attempt number');
is($a1->{statusCode}, 500, 'status code');
is($a1->{responseExcerpt}, 'sink says 500', 'response excerpt');
is($a1->{error}, 'HTTP 500', 'error');
ok(defined $a1->{latencyMs} && $a1->{latencyMs} >= 0, 'latency');
like($a1->{startedAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'startedAt, ISO 8601 UTC');
is($list->[0]{status}, 'succeeded', 'a succeeded one');
is($list->[0]{event}, 'product_update', 'with its event');

# pagination
my @seen;
my $cursor;
my $pages = 0;
do {
    $r = api('GET', "/webhooks/$id/deliveries?limit=4" . ($cursor ? "&cursor=$cursor" : ''), base => $h->base, token => $tok);
    push @seen, map { $_->{id} } @{ $r->{json}{deliveries} };
    $cursor = $r->{json}{nextCursor};
    $pages++;
} while ($cursor && $pages < 5);
is($pages, 2, 'limit 4: two pages');
is_deeply(\@seen, [ map { $_->{id} } @$list ], 'the pages together are the whole list, in order');
$r = api('GET', "/webhooks/$id/deliveries?status=failed", base => $h->base, token => $tok);
is_deeply([ map { $_->{objectKey} } @{ $r->{json}{deliveries} } ], ['p-0'], 'status=failed');
for my $q ('status=lost', 'limit=0', 'limit=101', 'limit=x', 'cursor=nope', 'cursor=' . $oid) {
    is(api('GET', "/webhooks/$id/deliveries?$q", base => $h->base, token => $tok)->{code}, 400, "bad query refused: $q");
}

# retry one now
my $n_before = @{ $sink->requests('/log') };
$r = api('POST', "/webhooks/$id/deliveries/$failed->{id}/retry", base => $h->base, token => $tok);
is($r->{code}, 200, 'retry: 200');
is($r->{json}{status}, 'pending', 'the delivery is pending again');
$sink->wait_for(path => '/log', count => $n_before + 1, timeout => 10);
wait_until(sub { q_at($db, 'SELECT status FROM octo_webhooks.deliveries WHERE id = $1', $failed->{id})->[0][0] eq 'succeeded' }, 10);
$r = api('GET', "/webhooks/$id/deliveries?status=succeeded&limit=100", base => $h->base, token => $tok);
my ($again) = grep { $_->{id} eq $failed->{id} } @{ $r->{json}{deliveries} };
is($again->{attemptCount}, 3, 'redelivered: a third attempt, succeeded');
is(api('POST', "/webhooks/$id/deliveries/$failed->{id}/retry", base => $h->base, token => $ro)->{code}, 403, 'retry needs the write ability');

# recover: every failed delivery since a time
$sink->behave('/log', codes => [500]);
emit($db, 'product_update', { id => "q-$_" }) for 1 .. 3;
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'failed'}, $id)->[0][0] == 3 }, 15);
$sink->behave('/log', codes => [200]);
$r = api('POST', "/webhooks/$id/recover", base => $h->base, token => $tok, json => { since => $since });
is($r->{code}, 200, 'recover: 200');
is($r->{json}{requeued}, 3, 'three failed deliveries requeued');
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'succeeded'}, $id)->[0][0] == 9 }, 10);
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'succeeded'}, $id)->[0][0], 9,
   'and delivered');
my $future = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
is(api('POST', "/webhooks/$id/recover", base => $h->base, token => $tok, json => { since => $future })->{json}{requeued}, 0,
   'nothing failed since a later time');
for my $bad ({}, { since => 'yesterday' }, { since => 5 }, { since => '2026-02-31T00:00:00Z' }) {
    my $b = api('POST', "/webhooks/$id/recover", base => $h->base, token => $tok, json => $bad);
    is($b->{code}, 400, 'recover refuses since ' . ($bad->{since} // '(missing)'));
}

# tenancy: another connection sees none of it
is(api('GET', "/webhooks/$id/deliveries", base => $h->base, token => $other)->{code}, 404, "another connection: list 404");
is(api('POST', "/webhooks/$id/deliveries/$failed->{id}/retry", base => $h->base, token => $other)->{code}, 404, 'retry 404');
is(api('POST', "/webhooks/$oid/deliveries/$failed->{id}/retry", base => $h->base, token => $other)->{code}, 404,
   "retry of our delivery under their own webhook: 404");
is(api('POST', "/webhooks/$id/recover", base => $h->base, token => $other, json => { since => $since })->{code}, 404, 'recover 404');
my $theirs = api('GET', "/webhooks/$oid/deliveries?limit=100", base => $h->base, token => $other)->{json}{deliveries};
ok(@$theirs && !grep({ $_->{webhookId} ne $oid } @$theirs), 'their own log holds only their deliveries');
ok(!grep({ $_->{id} eq $failed->{id} } @$theirs), 'none of ours');
is(api('GET', "/webhooks/not-a-uuid/deliveries", base => $h->base, token => $tok)->{code}, 404, 'a malformed id: 404');
is(api('DELETE', "/webhooks/$id/deliveries", base => $h->base, token => $tok)->{code}, 405, 'DELETE on the log: 405');
is(api('GET', "/webhooks/$id/deliveries", base => $h->base)->{code}, 401, 'no token: 401');
done_testing();
