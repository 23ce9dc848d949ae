# Retention: ended deliveries (with their attempts), their events, events
# that reached no webhook and the states of objects beyond the retention go;
# pending deliveries and their events stay whatever their age; a retention
# of seconds works; with two hosts of two dispatchers each, prune batches
# never overlap.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(sleep time);

my $db = new_database();
my $dir = join("\n", 'OctoWebhooksDispatchers 2', 'OctoWebhooksRetention 3s', 'OctoWebhooksRetrySchedule "1h"',
               'OctoWebhooksWebhookConcurrency 32');
my $h1 = start_httpd(conninfo => $db, directives => $dir);
my $h2 = start_httpd(conninfo => $db, directives => $dir);
my $sink = start_sink();
$sink->behave('/ok', codes => [200]);
$sink->behave('/bad', codes => [500]);
my $tok = token('res-pr', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h1->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/ok') });
my $bad = api('POST', '/webhooks', base => $h1->base, token => $tok, json => { event => 'product_update', url => $sink->url('/bad') })->{json}{id};
sub n { q_at($db, $_[0])->[0][0] }

my $n = 1200;      # more than one batch (500)
q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'pr-' || i), 'res-pr') FROM generate_series(1, $1::int) i}, $n);
# pending: a failing endpoint with its retry an hour away, and one parked behind it
emit($db, 'product_update', { id => 'stuck' });
emit($db, 'product_update', { id => 'stuck', v => 2 });
# an event no webhook receives
emit($db, 'order_update', { id => 'nobody' });
my $t0 = time;
is(scalar @{ $sink->wait_for(path => '/ok', count => $n, timeout => 90) }, $n, "$n deliveries sent");
$sink->wait_for(path => '/bad', count => 1);
ok(wait_until(sub { n(q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status <> 'pending'}) == 0 }, 60),
   'ended deliveries are gone after the retention');
is(n(q{SELECT count(*) FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id WHERE d.status <> 'pending'}), 0,
   'with their attempts');
ok(wait_until(sub { n(q{SELECT count(*) FROM octo_webhooks.events WHERE event_type <> 'product_update'}) == 0 }, 30),
   'their events and the event nobody received are gone');
is(n(q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending'}), 2, 'both pending deliveries stay');
is(n(q{SELECT count(*) FROM octo_webhooks.events WHERE event_type = 'product_update'}), 2, 'and their events');
is(n(q{SELECT count(*) FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = '} . $bad . q{'}), 1,
   'and the pending one\'s attempt');
ok(wait_until(sub { n(q{SELECT count(*) FROM octo_webhooks.object_states WHERE event_type = 'booking_update'}) == 0 }, 20),
   'object states beyond the retention are gone');
is(n(q{SELECT sum(n) FROM octo_webhooks.event_totals}), $n + 3, 'every event was counted before it went');

# one pruner at a time, across hosts
my $log = q_at($db, q{SELECT count(*), count(DISTINCT owner), sum(deliveries) FROM octo_webhooks.prune_log});
ok($log->[0][0] >= 3, "several prune batches ($log->[0][0], by $log->[0][1] dispatchers, $log->[0][2] deliveries)");
is(n(q{SELECT count(*) FROM octo_webhooks.prune_log a JOIN octo_webhooks.prune_log b
        ON a.id < b.id AND a.started_at < b.finished_at AND b.started_at < a.finished_at}), 0,
   'no two batches overlapped');
ok(n(q{SELECT max(deliveries) FROM octo_webhooks.prune_log}) <= 1000, 'batches are bounded (1,000 rows at most: the size adapts to the time a batch takes)');

# a delivery goes no sooner than the retention after it ended
emit($db, 'booking_update', { uuid => 'late' }, 'res-pr');
ok(wait_until(sub { n(q{SELECT count(*) FROM octo_webhooks.deliveries WHERE object_key = 'late' AND status = 'succeeded'}) }, 20), 'a late one succeeded');
my $ended = n(q{SELECT extract(epoch FROM completed_at) FROM octo_webhooks.deliveries WHERE object_key = 'late'});
ok(wait_until(sub { !n(q{SELECT count(*) FROM octo_webhooks.deliveries WHERE object_key = 'late'}) }, 30), 'and went');
my $kept = n(q{SELECT extract(epoch FROM now())}) - $ended;
ok($kept >= 3, sprintf('kept %.1f s after it ended (retention 3 s)', $kept));
ok($kept < 3 + 1.5 + 5, 'and pruned within a prune period after that');

# the in-flight count of a deleted webhook goes with the next pruning; one
# still counting a lease stays
q_at($db, q{INSERT INTO octo_webhooks.webhook_flight (webhook_id, in_flight)
             VALUES ('00000000-0000-4000-8000-000000000001', 0), ('00000000-0000-4000-8000-000000000002', 1)});
ok(wait_until(sub { !n(q{SELECT count(*) FROM octo_webhooks.webhook_flight
                         WHERE webhook_id = '00000000-0000-4000-8000-000000000001'}) }, 30),
   'a deleted webhook\'s in-flight count is pruned');
is(n(q{SELECT count(*) FROM octo_webhooks.webhook_flight WHERE webhook_id = '00000000-0000-4000-8000-000000000002'}), 1,
   'one with a lease still counted stays');

my $st = $h1->status;
ok($st->{pruned} && exists $st->{pruned}{deliveries}, 'status reports pruning');
done_testing();
