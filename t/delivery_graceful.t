# Graceful restart with deliveries in flight: a new dispatcher with the new
# configuration takes over and nothing is lost.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksLease 10s', 'OctoWebhooksDeliveryTimeout 5s', 'OctoWebhooksMaxPerHost 10'));
my $sink = start_sink();
$sink->behave('/g', delay => 0.5);
my $tok = token('res-g', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/g') });
my $n = 60;
q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'g-' || i), 'res-g') FROM generate_series(1, $1::int) i}, $n);
$sink->wait_for(path => '/g', count => 5, timeout => 10);
my $old = $h->dispatcher_pid;
$h->graceful;
my $new = $h->dispatcher_pid;
ok($new && $old && $new != $old, "graceful restart replaced the dispatcher ($old -> $new)");
ok(wait_until(sub { !kill(0, $old) }, 5), 'the old one exited within the grace period');
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0] == $n }, 30);
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0], $n, 'every delivery succeeded');
my %seen = map { $_->{json}{booking}{uuid} => 1 } @{ $sink->requests('/g') };
is(scalar keys %seen, $n, 'every event reached the endpoint');
is(q_at($db, 'SELECT count(DISTINCT dispatcher) FROM octo_webhooks.attempts')->[0][0], 2, 'both dispatchers did work');
done_testing();
