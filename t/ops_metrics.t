# /octo-metrics (Prometheus text, checked with the reference parser of
# python3-prometheus-client), /octo-status (JSON, with each dispatcher) and
# the mod_status section: what a delivery run leaves in them.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();
use Time::HiRes ();

my $JSON = JSON::PP->new;
my $mods = '/usr/lib/apache2/modules';
my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksDispatchers 2', 'OctoWebhooksRetrySchedule "1h"', 'OctoWebhooksRetention 1h',
    "LoadModule status_module $mods/mod_status.so", 'ExtendedStatus On',
    '<Location /server-status>', 'SetHandler server-status', '</Location>'));
my $sink = start_sink();
$sink->behave('/ok', codes => [200]);
$sink->behave('/bad', codes => [500]);
my $tok = token('res-mx', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $ok = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/ok') })->{json}{id};
my $bad = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'product_update', url => $sink->url('/bad') })->{json}{id};
my $off = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'order_update', url => $sink->url('/ok'), active => JSON::PP::false })->{json}{id};


my $m0 = prom_parse($h->metrics);
ok($m0, 'the reference parser reads /octo-metrics before any delivery');
is(prom_value($m0, 'octo_webhooks_dispatchers'), 2, 'dispatchers: 2 live');
is(prom_value($m0, 'octo_webhooks_database_up'), 1, 'database up');
is(prom_value($m0, 'octo_webhooks_webhooks', state => 'active'), 2, 'two active webhooks');
is(prom_value($m0, 'octo_webhooks_webhooks', state => 'disabled'), 1, 'one inactive');

my $n = 20;
emit($db, 'booking_update', { uuid => "mx-$_" }, 'res-mx') for 1 .. $n;
emit($db, 'product_update', { id => 'px-1' });
$sink->wait_for(path => '/ok', count => $n, timeout => 20);
$sink->wait_for(path => '/bad', count => 1, timeout => 20);
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.attempts})->[0][0] == $n + 1 }, 10);

my $text = $h->metrics;
my $m = prom_parse($text);
ok($m, 'the reference parser reads every line after deliveries') or diag $text;
is(prom_value($m, 'octo_webhooks_attempts_total', outcome => 'success'), $n, "attempts success: $n");
is(prom_value($m, 'octo_webhooks_attempts_total', outcome => 'http_error'), 1, 'attempts http_error: 1');
is(prom_value($m, 'octo_webhooks_attempts_total', outcome => 'transport_error'), 0, 'attempts transport_error: 0');
is(prom_value($m, 'octo_webhooks_attempt_duration_seconds_count'), $n + 1, 'histogram count = attempts sent');
is(prom_value($m, 'octo_webhooks_attempt_duration_seconds_bucket', le => '+Inf'), $n + 1, '+Inf bucket = count');
is(prom_value($m, 'octo_webhooks_deliveries', status => 'succeeded'), $n, "deliveries succeeded: $n");
is(prom_value($m, 'octo_webhooks_deliveries', status => 'pending'), 1, 'deliveries pending: 1 (waiting for its retry)');
is(prom_value($m, 'octo_webhooks_deliveries_due'), 0, 'none due (the retry is an hour away)');
is(prom_value($m, 'octo_webhooks_oldest_due_seconds'), 0, 'oldest due: 0 when none is due');
# due work nobody takes: an API-only host on a database of its own
my $db2 = new_database();
my $api = start_httpd(conninfo => $db2, directives => 'OctoWebhooksDispatcher Off');
my $tok2 = token('res-mx', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db2);
api('POST', '/webhooks', base => $api->base, token => $tok2, json => { event => 'booking_update', url => $sink->url('/ok') });
emit($db2, 'booking_update', { uuid => "due-$_" }, 'res-mx') for 1 .. 3;
# (the webhook is older still: an event reaches the webhooks that existed when it was emitted)
q_at($db2, q{UPDATE octo_webhooks.webhooks SET created_at = now() - interval '1 hour'});
q_at($db2, q{UPDATE octo_webhooks.events SET created_at = now() - interval '30 seconds' WHERE object_key = 'due-1'});
my $m1 = prom_parse($api->metrics);
is(prom_value($m1, 'octo_webhooks_events_unrouted'), 3, 'no dispatcher: three events wait to be routed');
my $ur = prom_value($m1, 'octo_webhooks_oldest_unrouted_seconds');
ok($ur >= 30 && $ur < 50, "oldest unrouted age in seconds ($ur)");
is(prom_value($m1, 'octo_webhooks_deliveries_due'), 0, 'and no delivery yet');
q_at($db2, q{SELECT events FROM octo_webhooks.fanout(10)});        # what a dispatcher's claim does
q_at($db2, q{UPDATE octo_webhooks.deliveries SET next_attempt_at = now() - interval '42 seconds' WHERE object_key = 'due-1'});
my $m2 = prom_parse($api->metrics);
is(prom_value($m2, 'octo_webhooks_events_unrouted'), 0, 'routed: none waits');
is(prom_value($m2, 'octo_webhooks_oldest_unrouted_seconds'), 0, 'oldest unrouted: 0 when none waits');
is(prom_value($m2, 'octo_webhooks_dispatchers'), 0, 'an API-only host: dispatchers 0');
is(prom_value($m2, 'octo_webhooks_deliveries_due'), 3, 'three due');
my $oldest = prom_value($m2, 'octo_webhooks_oldest_due_seconds');
ok($oldest >= 42 && $oldest < 60, "oldest due age in seconds ($oldest)");
is(prom_value($m, 'octo_webhooks_dispatcher_restarts_total'), 0, 'no restarts yet');
my $events = wait_until(sub { my $x = prom_parse($h->metrics); prom_value($x, 'octo_webhooks_events_total', type => 'booking_update') == $n ? $x : undef }, 20);
ok($events, "events_total{type=booking_update} = $n (tallied)");
is(prom_value($events, 'octo_webhooks_events_total', type => 'product_update'), 1, 'events_total{type=product_update} = 1') if $events;
ok(defined prom_value($m, 'octo_webhooks_db_pool_waits_total'), 'the API pool waits are exposed');
ok(defined prom_value($m, 'octo_webhooks_db_pool_timeouts_total'), 'the API pool timeouts are exposed');
ok(defined prom_value($m, "octo_webhooks_api_list_cache_${_}_total"), "the list cache's $_ are exposed") for qw(hits misses);

# status: the same facts, plus each dispatcher
my $st = $h->status;
is(scalar @{ $st->{dispatchers} }, 2, 'status lists two dispatchers');
for my $d (@{ $st->{dispatchers} }) {
    ok(kill(0, $d->{pid}), "dispatcher $d->{pid} is alive");
    like($d->{startedAt}, qr/^\d{4}-\d\d-\d\dT/, 'startedAt is ISO 8601');
    ok(exists $d->{inFlight} && exists $d->{lastClaimAt} && $d->{host}, 'pid, host, start, last claim, in flight');
}
ok((grep { defined $_->{lastClaimAt} } @{ $st->{dispatchers} }), 'a dispatcher has claimed');
is($st->{queue}{deliveries}{succeeded}, $n, 'status: succeeded');
is($st->{attempts}{success}, $n, 'status: attempts');

# a killed dispatcher is respawned and counted
my $victim = $h->dispatcher_pid;
kill 'KILL', $victim;
ok(wait_until(sub { my $x = prom_parse($h->metrics); prom_value($x, 'octo_webhooks_dispatcher_restarts_total') == 1
                    && prom_value($x, 'octo_webhooks_dispatchers') == 2 }, 20), 'restart counted, two dispatchers again');
ok(!(grep { $_ == $victim } $h->dispatcher_pids), 'the killed one is no longer listed');

# mod_status
my $auto = api('GET', '/server-status?auto', base => "http://127.0.0.1:$h->{port}", openapi => 0)->{body};
like($auto, qr/^OctoWebhooksDispatchers: 2$/m, 'mod_status ?auto has the dispatchers');
like($auto, qr/^OctoWebhooksPending: \d+$/m, 'and the queue');
like(api('GET', '/server-status', base => "http://127.0.0.1:$h->{port}", openapi => 0)->{body}, qr/<h2>octo webhooks<\/h2>/, 'HTML section');

# scrape cost here (the 1,000,000-row figure is bench/scrape)
my $t0 = Time::HiRes::time();
$h->metrics for 1 .. 20;
my $per = (Time::HiRes::time() - $t0) / 20 * 1000;
ok($per < 200, sprintf('a scrape takes %.1f ms here', $per));
done_testing();
