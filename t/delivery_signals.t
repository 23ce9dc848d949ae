# Endpoint signals and caps: 410 Gone deactivates, Retry-After (seconds and
# HTTP date, bounded) sets the next attempt, auto-disable after a period of
# failures only, the per-webhook concurrency and rate caps, payload and
# response caps.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use HTTP::Date qw(time2str);
use Time::HiRes qw(time);

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksRetrySchedule 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms',
    'OctoWebhooksMaxRetryAfter 4s', 'OctoWebhooksDisableAfter 2s', 'OctoWebhooksMaxPayloadSize 4096',
    'OctoWebhooksResponseCap 100'));
my $sink = start_sink();
my $tok = token('res-g', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
sub hook {
    my ($path, $event) = @_;
    return api('POST', '/webhooks', base => $h->base, token => $tok, json => {
        event => $event // 'product_update', url => $sink->url($path) })->{json}{id};
}
sub webhook { api('GET', "/webhooks/$_[0]", base => $h->base, token => $tok)->{json} }

# --- 410 Gone: deactivated with the reason, what it had pending failed
$sink->behave('/gone', codes => [410], delay => 0.3);
my $gone = hook('/gone', 'booking_update');
q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-' || g), 'res-g'))
              FROM generate_series(1, 3) g});
wait_until(sub { !webhook($gone)->{active} }, 10);
my $w = webhook($gone);
is($w->{active}, JSON::PP::false, '410: the webhook is deactivated');
like($w->{disabledReason} // '', qr/410/, 'disabledReason says why');
like($w->{disabledAt} // '', qr/^\d{4}-/, 'disabledAt is set');
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'pending'}, $gone)->[0][0] == 0 }, 10);
my $st = q_at($db, q{SELECT status, count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 GROUP BY status}, $gone);
is_deeply($st, [ [ 'failed', 3 ] ], 'its pending deliveries are failed (recover can bring them back)');
ok(@{ $sink->requests('/gone') } <= 3, 'no retries after 410');
# emit() queues in its own transaction: the count is final when it returns
emit($db, 'booking_update', { uuid => 'b-after' }, 'res-g');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1}, $gone)->[0][0], 3,
   'no new deliveries for the deactivated webhook');
my $re = api('PATCH', "/webhooks/$gone", base => $h->base, token => $tok, json => { active => JSON::PP::true })->{json};
is($re->{active}, JSON::PP::true, 'reactivated by PATCH');
is($re->{disabledReason}, undef, 'the reason is cleared');

# --- Retry-After
$sink->behave('/later', codes => [503, 200], headers => { 'Retry-After' => '2' });
hook('/later');
$sink->behave('/date', codes => [429, 200], headers => { 'Retry-After' => time2str(time + 3) });
hook('/date');
$sink->behave('/bounded', codes => [503, 200], headers => { 'Retry-After' => '3600' });
hook('/bounded');
$sink->behave('/nohint', codes => [503, 200]);
hook('/nohint');
emit($db, 'product_update', { id => 'p-ra' });
my $gap = sub { my $r = $sink->wait_for(path => $_[0], count => 2, timeout => 15); @$r >= 2 ? $r->[1]{time} - $r->[0]{time} : -1 };
my $g = $gap->('/later');
ok($g >= 1.9 && $g < 3.5, "Retry-After: 2 -> next attempt after ${g}s (the schedule says 0.3s)");
$g = $gap->('/date');
ok($g >= 1.5 && $g < 4.5, "Retry-After as an HTTP date (3s ahead) -> ${g}s");
$g = $gap->('/bounded');
ok($g >= 3.5 && $g < 5.5, "Retry-After: 3600 bounded by OctoWebhooksMaxRetryAfter 4s -> ${g}s");
$g = $gap->('/nohint');
ok($g > 0 && $g < 1.5, "503 without Retry-After follows the schedule -> ${g}s");

# --- auto-disable: every attempt failing for 2s
$sink->behave('/down', codes => [500]);
my $down = hook('/down');
$sink->behave('/flaky', codes => [500, 200]);
my $flaky = hook('/flaky');
emit($db, 'product_update', { id => 'p-ad' });
wait_until(sub { !webhook($down)->{active} }, 15);
$w = webhook($down);
is($w->{active}, JSON::PP::false, 'failing for longer than OctoWebhooksDisableAfter: deactivated');
like($w->{disabledReason} // '', qr/every delivery attempt failed/, 'with the reason');
my $first = $sink->requests('/down')->[0]{time};
my $last = $sink->requests('/down')->[-1]{time};
ok($last - $first >= 1.8, sprintf('only after the period (%.1fs of failures)', $last - $first));
is(webhook($flaky)->{active}, JSON::PP::true, 'a webhook that recovered stays active');
is(q_at($db, 'SELECT failing_since IS NULL FROM octo_webhooks.webhooks WHERE id = $1', $flaky)->[0][0], 't',
   'its failing streak ended with the success');

# --- payload and response caps
$sink->behave('/big', codes => [200], body => 'R' x 5000);
my $big = hook('/big');
emit($db, 'product_update', { id => 'p-big', blob => 'x' x 5000 });
my $row = wait_until(sub { q_at($db, q{SELECT status, attempts, last_error FROM octo_webhooks.deliveries d
    JOIN octo_webhooks.events e ON e.id = d.event_id WHERE d.webhook_id = $1 AND e.object_key = 'p-big' AND status <> 'pending'}, $big)->[0] }, 10);
is($row->[0], 'failed', 'a payload over OctoWebhooksMaxPayloadSize is not sent: failed');
is($row->[1], 1, 'at once, without retries');
like($row->[2], qr/OctoWebhooksMaxPayloadSize/, 'the reason names the directive');
ok(!grep({ $_->{json} && $_->{json}{product}{id} eq 'p-big' } @{ $sink->requests('/big') }), 'the endpoint got nothing');
emit($db, 'product_update', { id => 'p-small' });
$sink->wait_for(path => '/big');
$row = wait_until(sub { q_at($db, q{SELECT d.status, length(a.response_excerpt) FROM octo_webhooks.deliveries d
    JOIN octo_webhooks.events e ON e.id = d.event_id JOIN octo_webhooks.attempts a ON a.delivery_id = d.id
    WHERE d.webhook_id = $1 AND e.object_key = 'p-small' AND d.status <> 'pending'}, $big)->[0] }, 10);
is_deeply($row, [ 'succeeded', 100 ], 'a 5,000-byte response: read up to OctoWebhooksResponseCap (100), the rest dropped');

# --- the default per-webhook concurrency (16): distinct objects to one
# webhook overlap; one object's deliveries still take turns
# (a sink of its own: the other webhooks' retries share no host with it)
my $msink = start_sink();
$msink->behave('/many', delay => 0.6);
my $many = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => $msink->url('/many') })->{json}{id};
q_at($db, q{SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'm-' || g))) FROM generate_series(1, 4) g});
q_at($db, q{SELECT octo_webhooks.emit('product_update', '{"id": "m-1", "v": 2}')});
my $m = $msink->wait_for(path => '/many', count => 5, timeout => 15);
my @mt = sort { $a <=> $b } map { $_->{time} } grep { !$_->{json}{product}{v} } @$m;
cmp_ok($mt[-1] - $mt[0], '<', 0.5, 'default concurrency: four objects were in flight together (spread '
       . sprintf('%.2f', $mt[-1] - $mt[0]) . ' s)');
my ($m1) = grep { $_->{json}{product}{id} eq 'm-1' && !$_->{json}{product}{v} } @$m;
my ($m2) = grep { $_->{json}{product}{v} } @$m;
cmp_ok($m2->{time} - $m1->{time}, '>=', 0.55, "one object's second event waited for its first to end");

# --- per-webhook concurrency 1 (set here: the default is 16) and the rate cap, on a second host
my $db2 = new_database();
my $h2 = start_httpd(conninfo => $db2, directives => "OctoWebhooksWebhookConcurrency 1\nOctoWebhooksWebhookRate 4");
my $t2 = token('res-c', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db2);
$sink->behave('/one', delay => 0.4);
my $one_id = api('POST', '/webhooks', base => $h2->base, token => $t2, json => { event => 'product_update', url => $sink->url('/one') })->{json}{id};
q_at($db2, q{SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'c-' || g))) FROM generate_series(1, 4) g});
my $one = $sink->wait_for(path => '/one', count => 4, timeout => 15);
my @gaps = map { $one->[$_]{time} - $one->[$_ - 1]{time} } 1 .. 3;
ok(!grep({ $_ < 0.35 } @gaps), 'concurrency 1: each delivery starts after the previous one ended (gaps '
   . join(', ', map { sprintf '%.2f', $_ } @gaps) . ')');
api('PATCH', "/webhooks/$one_id", base => $h2->base, token => $t2, json => { active => JSON::PP::false });
api('POST', '/webhooks', base => $h2->base, token => $t2, json => { event => 'product_update', url => $sink->url('/rate') });
q_at($db2, q{SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'r-' || g))) FROM generate_series(1, 12) g});
my $rate = $sink->wait_for(path => '/rate', count => 12, timeout => 20);
is(scalar @$rate, 12, 'the rate-capped webhook got all 12, queued at once');
# 4 per one-second window: any 9 in a row span three windows, so a second or more
my @t = map { $_->{time} } @$rate;
my @spans = map { $t[$_ + 8] - $t[$_] } 0 .. $#t - 8;
ok(!grep({ $_ < 0.9 } @spans), 'at most 4 a second: any 9 in a row span over a second ('
   . join(', ', map { sprintf '%.2f', $_ } @spans) . ')');
done_testing();
