# Ordering per object: 50 events of one booking arrive in event order while
# the endpoint fails the first attempts; another booking's events flow on
# meanwhile. Per-webhook concurrency 4, so order comes from the object lines,
# not from sending one at a time.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksRetrySchedule 1s 1s 1s 1s', 'OctoWebhooksWebhookConcurrency 4'));
my $sink = start_sink();
my $tok = token('res-o', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$sink->behave('/ord#b-AAA', codes => [500, 500, 200]);
my $wh = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => $sink->url('/ord') })->{json}{id};
ok($wh, 'webhook created');

# 50 events of A, then 20 of B, back to back.
for my $b ([ 'b-AAA', 50 ], [ 'b-BBB', 20 ]) {
    q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', $1::text, 'seq', g),
                'res-o')) FROM generate_series(1, $2::int) g}, @$b);
}

my $all = $sink->wait_for(path => '/ord', count => 72, timeout => 40);
my @a = grep { $_->{json}{booking}{uuid} eq 'b-AAA' } @$all;
my @b = grep { $_->{json}{booking}{uuid} eq 'b-BBB' } @$all;
is(scalar @a, 52, "booking A: 50 events, the first tried 3 times");
is(scalar @b, 20, 'booking B: 20 events, each once');
my @aseq = map { $_->{json}{booking}{seq} } @a;
is_deeply(\@aseq, [1, 1, 1, 2 .. 50], 'A in event order: later events waited behind the failing first');
is_deeply([ map { $_->{json}{booking}{seq} } @b ], [1 .. 20], 'B in event order');
my $a_ok = $a[2]{time};
my @b_late = grep { $_->{time} > $a_ok } @b;
is(scalar @b_late, 0, "B was not held up by A's retries (all of B arrived before A's first success)");
my %ids;
$ids{ $_->{headers}{'webhook-id'} }++ for @a;
is(scalar keys %ids, 50, 'retries of one delivery keep their webhook-id');

my $st = q_at($db, q{SELECT status, count(*) FROM octo_webhooks.deliveries GROUP BY status});
is_deeply($st, [ [ 'succeeded', 70 ] ], 'all 70 succeeded');
done_testing();
