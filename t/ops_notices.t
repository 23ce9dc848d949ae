# Notices: a webhook disabled by a 410 and deliveries that exhaust their
# retries each log one warn line (ids, connection, reason; no URL, secret or
# body) and reach the operator's endpoint as signed Standard Webhooks
# notices, retried when it fails, exhausted ones folded to at most one per
# webhook per minute.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64 encode_base64);
use JSON::PP ();

my $secret = 'whsec_' . encode_base64('o' x 32, '');
my $db = new_database();
my $sink = start_sink();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksRetrySchedule "1s"', 'OctoWebhooksWebhookConcurrency 8',
    'OctoWebhooksOperatorWebhook "' . $sink->url('/operator') . '"',
    "OctoWebhooksOperatorSecret $secret"));
$sink->behave('/operator', codes => [503, 200]);
$sink->behave('/gone', codes => [410]);
$sink->behave('/dead', codes => [500]);
my $tok = token('res-nt', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $gone = api('POST', '/webhooks', base => $h->base, token => $tok,
                  json => { event => 'product_update', url => 'http://user:pw-secret@127.0.0.1:' . $sink->{port} . '/gone' })->{json}{id};
my $dead = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'availability_update', url => $sink->url('/dead') })->{json}{id};

emit($db, 'product_update', { id => 'p-nt' });
my $n = 5;
emit($db, 'availability_update', { id => "a-$_", productId => 'p', optionId => 'o' }) for 1 .. $n;

# the 410: one disable notice, after one failed attempt at the operator's endpoint
my $disabled_of = sub { [ grep { $_->{json}{type} eq 'webhook.disabled' } @{ $sink->requests('/operator') } ] };
wait_until(sub { @{ $disabled_of->() } >= 2 }, 30);
my @disabled = @{ $disabled_of->() };
ok(@disabled >= 2, 'the disable notice was retried after the endpoint failed');
is($disabled[0]{headers}{'webhook-id'}, $disabled[-1]{headers}{'webhook-id'}, 'with the same webhook-id');
my $d = $disabled[-1];
is($d->{json}{webhookId}, $gone, 'webhook.disabled names the webhook');
is($d->{json}{connection}, 'res-nt', 'and the connection');
like($d->{json}{reason}, qr/410/, 'and why');
like($d->{json}{time}, qr/^\d{4}-\d\d-\d\dT[\d:.]+Z$/, 'and when');
my ($sig) = ($d->{headers}{'webhook-signature'} // '') =~ /v1,(\S+)/;
my $want = encode_base64(hmac_sha256("$d->{headers}{'webhook-id'}.$d->{headers}{'webhook-timestamp'}.$d->{body}",
                                     decode_base64(substr($secret, 6))), '');
is($sig, $want, 'signed with OctoWebhooksOperatorSecret (Standard Webhooks)');

# the exhausted ones: one notice now, the rest folded into the next, due a minute later
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'failed' AND webhook_id = $1}, $dead)->[0][0] == $n }, 30),
   "$n deliveries exhausted their retries");
# settled when every exhausted delivery is in a notice, one of them sent (a
# notice is marked sent once the endpoint answered, so the sink has it)
ok(wait_until(sub { my $r = q_at($db, q{SELECT coalesce(sum(count), 0), count(*) FILTER (WHERE status = 'sent')
                                          FROM octo_webhooks.notices WHERE webhook_id = $1 AND type = 'delivery.exhausted'},
                                 $dead)->[0];
                    $r->[0] == $n && $r->[1] >= 1 }, 20), 'every exhausted delivery is in a notice, one sent');
my @ex = grep { $_->{json}{type} eq 'delivery.exhausted' } @{ $sink->requests('/operator') };
is(scalar @ex, 1, 'one delivery.exhausted notice within the minute');
is($ex[0]{json}{webhookId}, $dead, 'for the webhook');
ok($ex[0]{json}{count} >= 1 && @{ $ex[0]{json}{deliveryIds} } == $ex[0]{json}{count}, "with its count ($ex[0]{json}{count}) and delivery ids");
my $rest = q_at($db, q{SELECT coalesce(sum(count), 0), min(extract(epoch FROM window_at)) FROM octo_webhooks.notices
                       WHERE webhook_id = $1 AND status = 'pending'}, $dead)->[0];
is($rest->[0] + $ex[0]{json}{count}, $n, 'the rest wait in one folded notice');
my $sent_at = q_at($db, q{SELECT extract(epoch FROM window_at) FROM octo_webhooks.notices WHERE webhook_id = $1 AND status = 'sent'}, $dead)->[0][0];
ok(!$rest->[0] || $rest->[1] - $sent_at >= 59.9, 'due a minute after the one sent');

# the auto-disable path (complete() calls deactivate() when every attempt failed
# for OctoWebhooksDisableAfter) and a reseller's own PATCH active:false
my $auto = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'order_update', url => $sink->url('/ok') })->{json}{id};
my $mine = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'order_update', url => $sink->url('/ok2') })->{json}{id};
is(api('PATCH', "/webhooks/$mine", base => $h->base, token => $tok, json => { active => JSON::PP::false })->{code}, 200, 'a reseller deactivates its own webhook');
q_at($db, q{SELECT octo_webhooks.deactivate(ARRAY[$1::uuid], 'every delivery attempt failed for 5 days')}, $auto);
my $ad = wait_until(sub { my @r = grep { ($_->{json}{webhookId} // '') eq $auto } @{ $sink->requests('/operator') }; $r[0] }, 20);
ok($ad && $ad->{json}{type} eq 'webhook.disabled' && $ad->{json}{reason} =~ /failed for 5 days/, 'auto-disable: a notice with its reason');
# a notice is queued by the deactivating statement itself (a trigger): none
# queued then, none ever sent
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.notices WHERE webhook_id = $1}, $mine)->[0][0], 0,
   'no notice queued for the reseller\'s own deactivation');
ok(!(grep { ($_->{json}{webhookId} // '') eq $mine } @{ $sink->requests('/operator') }), 'none for the reseller\'s own deactivation');

# warn lines (written by the dispatcher as it records the outcomes)
wait_until(sub { (() = $h->error_log =~ /OWH00540: /g) >= $n }, 10);
my $log = $h->error_log;
my @dis = grep { /webhook $gone / } $log =~ /^.*OWH00541: .*$/mg;
is(scalar @dis, 1, 'one warn line for the disable');
is(scalar(() = $log =~ /OWH00541: .*webhook $auto .*failed for 5 days/g), 1, 'and one for the auto-disable');
like($dis[0] // '', qr/\[octo_webhooks:warn\].*webhook $gone connection res-nt: .*410/, 'with the webhook, connection and reason');
my @exl = $log =~ /^.*OWH00540: .*$/mg;
is(scalar @exl, $n, 'one warn line per exhausted delivery');
like($exl[0] // '', qr/\[octo_webhooks:warn\].*webhook $dead connection res-nt delivery [0-9a-f-]{36}: HTTP 500/, 'with ids, connection and reason');
unlike(join("\n", @dis, @exl), qr/pw-secret|whsec_|127\.0\.0\.1:\d+/, 'no URL, credentials or secret in them');
done_testing();
