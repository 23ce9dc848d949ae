# Booking/order events that name a connection go only to its webhooks, and
# one that names none is nobody's (no webhook gets it); availability/product
# go to every subscriber; trigger goes through the queue.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db);
my $sink = start_sink();
my %tok = map { $_ => token("res-$_", ['octo:read.webhooks', 'octo:write.webhooks'], db => $db) } qw(a b);
for my $c (qw(a b)) {
    for my $ev (qw(booking_update order_update product_update)) {
        api('POST', '/webhooks', base => $h->base, token => $tok{$c}, json => { event => $ev, url => $sink->url("/$c/$ev") });
    }
}
emit($db, 'booking_update', { uuid => 'b-a' }, 'res-a');
emit($db, 'order_update', { id => 'o-b' }, 'res-b');
emit($db, 'product_update', { id => 'p-all' }, 'res-a');
my $nobody = emit($db, 'booking_update', { uuid => 'b-any' });
ok(wait_settled($db, 10), 'every delivery made');
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = $1', $nobody)->[0][0], 0,
   'a booking without a connection: no delivery at all');
my %got;
push @{ $got{ $_->{path} } }, ($_->{json}{booking}{uuid} // $_->{json}{order}{id} // $_->{json}{product}{id}) for @{ $sink->requests };
is_deeply($got{'/a/booking_update'}, ['b-a'], "A's booking webhook: its booking only");
ok(!$got{'/b/booking_update'}, "B never receives A's booking, nor one without a connection");
is_deeply($got{'/b/order_update'}, ['o-b'], "B's order to B");
ok(!$got{'/a/order_update'}, "A never receives B's order");
is_deeply($got{'/a/product_update'}, ['p-all'], 'product_update to A');
is_deeply($got{'/b/product_update'}, ['p-all'], 'product_update to B as well');

# trigger: a test notification through the same queue
my $w = api('POST', '/webhooks', base => $h->base, token => $tok{a}, json => { event => 'booking.updated', url => $sink->url('/trigger') })->{json};
my $r = api('POST', "/webhooks/$w->{id}/trigger", base => $h->base, token => $tok{a}, json => { reference => 'R1', productId => 'p1', mobile => '+12025550123' });
is($r->{code}, 200, 'trigger: 200');
is($r->{json}{webhook}{id}, $w->{id}, 'answers the webhook');
like($r->{json}{queued}[0]{deliveryId}, qr/^[0-9a-f-]{36}$/, 'and what was queued');
my $t = $sink->wait_for(path => '/trigger')->[0];
is($t->{json}{booking}{supplierReference}, 'R1', 'the sink received the test booking');
is($t->{json}{booking}{productId}, 'p1', 'with the request fields');
is($t->{headers}{'webhook-id'}, "msg_$r->{json}{queued}[0]{deliveryId}", 'same delivery id');
$r = api('POST', "/webhooks/$w->{id}/trigger", base => $h->base, token => $tok{b}, json => {});
is($r->{code}, 404, "B cannot trigger A's webhook");
$r = api('POST', "/webhooks/$w->{id}/trigger", base => $h->base, token => $tok{a}, json => { reference => 5 });
is($r->{code}, 400, 'trigger validates its body');
my $wa = api('POST', '/webhooks', base => $h->base, token => $tok{a}, json => { event => 'availability_update', url => $sink->url('/trig-av') })->{json};
$r = api('POST', "/webhooks/$wa->{id}/trigger", base => $h->base, token => $tok{a}, json => { availabilityIds => ['2026-05-14T09:00:00-04:00', '2026-05-15T09:00:00-04:00'], productId => 'p', optionId => 'o', units => [{ id => 'adult' }] });
is(scalar @{ $r->{json}{queued} }, 2, 'one availability per id');
my $av = $sink->wait_for(path => '/trig-av', count => 2);
is_deeply([ sort map { $_->{json}{availability}{id} } @$av ], ['2026-05-14T09:00:00-04:00', '2026-05-15T09:00:00-04:00'], 'both delivered');
is_deeply($av->[0]{json}{availability}{units}, [{ id => 'adult' }], 'units passed through');
done_testing();
