# Issue 12 #1: a reseller whose webhook URL names the supplier API's host
# (resolve mode) must not get its POST sent over the fetch's warm connection.
# The allow-list does not cover loopback here: the fetch (trusted, from the
# configuration) works, the delivery to the same host:port is refused by the
# guard, recorded with the reason, and never reaches the sink.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();

my $sink = start_sink();
my $port = $sink->{port};
my $db = new_database();
my $h = start_httpd(conninfo => $db, guarded => 1, directives => join("\n",
    'OctoWebhooksResolve booking_update',
    "OctoWebhooksSupplierApi \"http://localhost:$port/octo-api/\"",
    'OctoWebhooksSupplierApiToken "supplier-api-token"'));
my $tok = token('res-evil', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $wh = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => "http://localhost:$port/stolen", retryOnError => JSON::PP::false });
is($wh->{code}, 200, 'a hostname is accepted at create');

$sink->octo_state({ map { ("b-$_" => { status => 'CONFIRMED' }) } 1 .. 3 });
for my $n (1 .. 3) {
    emit($db, 'booking_update', { uuid => "b-$n" }, 'res-evil');
    my $row = wait_until(sub { q_at($db, q{SELECT status, last_error FROM octo_webhooks.deliveries d
        JOIN octo_webhooks.events e ON e.id = d.event_id
        WHERE d.webhook_id = $1 AND d.status <> 'pending' AND e.object->>'uuid' = $2}, $wh->{json}{id}, "b-$n")->[0] }, 15);
    is($row->[0] // '', 'failed', "event $n: the delivery failed");
    like($row->[1] // '', qr/refused by the SSRF guard: (127\.0\.0\.1|::1) is loopback/, "event $n: refused by the guard");
}
ok(scalar @{ $sink->requests('/octo-api/bookings/b-1') } >= 1, 'the trusted fetch reached the supplier API');
is(scalar @{ $sink->requests('/stolen') }, 0, 'the reseller\'s POST never reached the supplier API host');
done_testing();
