# A slow supplier API (resolve mode) holds at most half of the dispatcher's
# slots: deliveries that need no fetch keep flowing meanwhile.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(time);

my $sink = start_sink();
my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksResolve booking_update', 'OctoWebhooksSupplierApi "' . $sink->url('/octo-api') . '"',
    'OctoWebhooksMaxConcurrency 8', 'OctoWebhooksWebhookConcurrency 16', 'OctoWebhooksRetrySchedule "30s"'));
my $tok = token('res-s', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/b') });
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'product_update', url => $sink->url('/p') });
$sink->behave("/octo-api/bookings/s-$_", delay => 4) for 1 .. 12;

q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 's-' || i), 'res-s'))
             FROM generate_series(1, 12) i});
wait_until(sub { grep { $_->{path} =~ m{^/octo-api/} } @{ $sink->requests } }, 5);
my $t0 = time;
q_at($db, q{SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || i))) FROM generate_series(1, 4) i});
my $p = $sink->wait_for(path => '/p', count => 4, timeout => 10);
my $took = time - $t0;
is(scalar @$p, 4, 'the product events were delivered');
cmp_ok($took, '<', 2.5, sprintf('while the supplier API hangs for 4 s (%.2f s)', $took));
my $fetching = grep { $_->{path} =~ m{^/octo-api/} } @{ $sink->requests };
cmp_ok($fetching, '<=', 4, "at most half of the 8 slots fetching at once ($fetching)");

done_testing();
