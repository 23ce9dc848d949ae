# One slow endpoint never stalls the others.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(time);

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksMaxPerHost 2', 'OctoWebhooksMaxConcurrency 20', 'OctoWebhooksDeliveryTimeout 8s', 'OctoWebhooksLease 20s'));
my $slow = start_sink();
my $fast = start_sink();
my $tok = token('res-s', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$slow->behave('/slow', delay => 3);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $slow->url('/slow') });
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $fast->url('/fast') });

my $t0 = time;
emit($db, 'booking_update', { uuid => "b-$_" }, 'res-s') for 1 .. 30;
my $got = $fast->wait_for(path => '/fast', count => 30, timeout => 20);
my $took = time - $t0;
is(scalar @$got, 30, 'every event reached the fast endpoint');
cmp_ok($took, '<', 6, "while the slow one holds its transfers ($took s for 30)");
cmp_ok(scalar @{ $slow->requests('/slow') }, '<=', 4, 'the slow endpoint saw at most MaxPerHost at a time so far');
my $pending = q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending'})->[0][0];
cmp_ok($pending, '>=', 20, "the slow endpoint's deliveries wait in the queue ($pending pending)");
done_testing();
