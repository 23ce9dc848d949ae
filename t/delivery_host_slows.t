# A host that was fast may have several rounds of claims waiting for it; when
# it turns slow, what waits beyond one round is handed back at once, so no
# waiting claim outlives its lease (which would send a delivery twice: the
# stale claim and the one that took it over, the same attempt number twice).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
# 2 at a time to the host, 2 s per attempt at most, leases of 7 s (>= 3 timeouts,
# so a fast host gets its extra rounds: 12 waiting)
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksMaxPerHost 2', 'OctoWebhooksDeliveryTimeout 2s', 'OctoWebhooksDeliveryConnectTimeout 1s',
    'OctoWebhooksLease 7s',
    'OctoWebhooksRetrySchedule "20s"'));
my $sink = start_sink();
my $tok = token('res-hs', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/x') });

emit($db, 'booking_update', { uuid => "fast-$_" }, 'res-hs') for 1 .. 20;
is(scalar @{ $sink->wait_for(path => '/x', count => 20, timeout => 20) }, 20, 'the host answers fast: 20 delivered');

$sink->behave('/x', delay => 6);        # now it hangs past the attempt timeout
q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'slow-' || g), 'res-hs'))
              FROM generate_series(1, 40) g});
# without the hand-back, the 12 claims waiting would start 2 every 2 s: the
# last ones after their 7 s lease, while the rows were claimed again
my $slow_attempts = sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.attempts a
    JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id WHERE d.object_key LIKE 'slow-%'})->[0][0] };
my $leased = sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE object_key LIKE 'slow-%'
    AND status = 'pending' AND claim_id IS NOT NULL})->[0][0] };
# while fast: 2 sending and 12 waiting here (the rest stays in the queue)
ok(wait_until(sub { $leased->() >= 12 }, 10), 'the fast host got several rounds of claims waiting');
ok(wait_until(sub { $slow_attempts->() >= 2 }, 20), 'the first attempts time out against the hanging host');
# the host turned slow: what waits beyond one round went back at once
my $after = wait_until(sub { my $n = $leased->(); $n <= 6 ? $n : undef }, 3);
ok($after, sprintf('then only about 2 sending and 2 waiting keep their leases (%s leased)', $after // $leased->()));
# 14 attempts of 2 s, 2 at a time: 14 s, past the lease of the last of 12
# claims that waited from the start
ok(wait_until(sub { $slow_attempts->() >= 14 }, 60), 'attempts go on, 2 at a time');
is(q_at($db, q{SELECT count(*) FROM (SELECT delivery_id, attempt FROM octo_webhooks.attempts
                                       GROUP BY 1, 2 HAVING count(*) > 1) x})->[0][0], 0,
   'no attempt made twice');
done_testing();
