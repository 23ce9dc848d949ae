# Two httpd instances on one database: both dispatchers work, no event is
# delivered twice.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $dir = join("\n", 'OctoWebhooksMaxPerHost 4', 'OctoWebhooksBatchSize 20');
my $h1 = start_httpd(conninfo => $db, directives => $dir);
my $h2 = start_httpd(conninfo => $db, directives => $dir);
my $sink = start_sink();
$sink->behave('/m', delay => 0.01);
my $tok = token('res-m', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h1->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/m') });
my $n = 500;
q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'm-' || i), 'res-m') FROM generate_series(1, $1::int) i}, $n);
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0] == $n }, 60);
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0], $n, 'every delivery succeeded');
my $reqs = $sink->requests('/m');
my %seen;
$seen{ $_->{json}{booking}{uuid} }++ for @$reqs;
is(scalar keys %seen, $n, "all $n events delivered");
is(scalar(grep { $_ > 1 } values %seen), 0, 'none delivered twice');
my $by = q_at($db, 'SELECT dispatcher, count(*) FROM octo_webhooks.attempts GROUP BY dispatcher');
is(scalar @$by, 2, 'both dispatchers delivered (' . join(', ', map { "$_->[0]: $_->[1]" } @$by) . ')');
is(q_at($db, 'SELECT count(*) FROM (SELECT delivery_id FROM octo_webhooks.attempts GROUP BY delivery_id HAVING count(*) > 1) x')->[0][0],
   0, 'one attempt per delivery');
done_testing();
