# OctoWebhooksDispatchers N: N dispatcher processes per database share the
# work like N hosts (every delivery once, per-webhook order kept), each is
# respawned on its own, and a stop takes all of them within one grace period.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(time);

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksDispatchers 3', 'OctoWebhooksBatchSize 20', 'OctoWebhooksWebhookConcurrency 8'));
my $sink = start_sink();
$sink->behave('/a', delay => 0.02);
$sink->behave('/b', delay => 0.02);
my $tok = token('res-d', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url($_) }) for '/a', '/b';

my @pids = @{ wait_until(sub { my @p = $h->dispatcher_pids; @p == 3 ? [@p] : undef }, 10) || [] };
is(scalar @pids, 3, 'three dispatcher processes, children of httpd');

# 150 events of 30 bookings (5 each, in order per booking) to two webhooks
q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-' || (i % 30), 'n', i), 'res-d'))
             FROM generate_series(1, 150) i});
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0] == 300 }, 60);
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0], 300, 'all 300 delivered');
for my $path ('/a', '/b') {
    my $got = $sink->requests($path);
    my %ids = map { $_->{headers}{'webhook-id'} => 1 } @$got;
    is(scalar @$got, 150, "$path: 150 requests");
    is(scalar keys %ids, 150, "$path: no delivery twice");
    my (%last, $disorder);
    for my $r (@$got) {
        my ($b, $n) = @{ $r->{json}{booking} }{qw(uuid n)};
        $disorder++ if defined $last{$b} && $n < $last{$b};
        $last{$b} = $n;
    }
    ok(!$disorder, "$path: each booking's events in order");
}
cmp_ok(q_at($db, q{SELECT count(DISTINCT dispatcher) FROM octo_webhooks.attempts})->[0][0], '>=', 2,
       'the attempts were made by more than one dispatcher');
# three dispatchers complete and claim at once: every round trip went
# through (in-flight counts are written under the claims' lock only, so one
# dispatcher's outcomes never wait on a claim that waits on them)
unlike($h->error_log, qr/deadlock detected|OWH00505/, 'no round trip failed (no deadlock between dispatchers)');
is(q_at($db, q{SELECT coalesce(sum(in_flight), 0) FROM octo_webhooks.webhook_flight})->[0][0], 0,
   'nothing in flight once all is delivered');

# one dies: it alone is replaced
my $victim = $pids[1];
kill 'KILL', $victim;
my @after = @{ wait_until(sub { my @p = $h->dispatcher_pids; (@p == 3 && !grep { $_ == $victim } @p) ? [@p] : undef }, 15) || [] };
is(scalar @after, 3, 'the killed one is respawned, three again');
is(scalar(grep { my $p = $_; grep { $_ == $p } @pids } @after), 2, 'the other two kept running');
emit($db, 'booking_update', { uuid => 'after-kill' }, 'res-d');
ok($sink->wait_for(path => '/a', count => 151)->[150], 'and deliveries go on');

# stop: all of them, within one grace period
my $t0 = time;
$h->stop;
my $gone = wait_until(sub { !grep { kill 0, $_ } @after }, 10);
ok($gone, 'every dispatcher stopped with httpd');
cmp_ok(time - $t0, '<', 6, 'within one grace period, not one per process');

done_testing();
