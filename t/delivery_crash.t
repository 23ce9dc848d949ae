# kill -9 of the dispatcher mid-batch: it is respawned and every event is
# delivered, duplicates only as repeats with the same webhook-id. kill -9 of
# httpd takes the dispatcher along. apachectl stop leaves none behind.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksLease 3s', 'OctoWebhooksDeliveryTimeout 2s', 'OctoWebhooksDeliveryConnectTimeout 1s',
    'OctoWebhooksMaxPerHost 8', 'OctoWebhooksBatchSize 50'));
my $sink = start_sink();
$sink->behave('/c', delay => 0.05);
my $tok = token('res-c', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/c') });

my $n = 200;
q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-' || i), 'res-c') FROM generate_series(1, $1::int) i}, $n);
$sink->wait_for(path => '/c', count => 20, timeout => 10);
my $victim = $h->dispatcher_pid;
ok($victim, "dispatcher $victim is delivering");
kill 'KILL', $victim;
my $next = wait_until(sub { my $p = $h->dispatcher_pid; $p && $p != $victim ? $p : undef }, 15);
ok($next, "respawned as $next");

wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0] == $n }, 40);
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'succeeded'})->[0][0], $n, 'every delivery succeeded');
my %by;
for my $r (@{ $sink->requests('/c') }) { $by{ $r->{json}{booking}{uuid} }{ $r->{headers}{'webhook-id'} }++ }
is(scalar keys %by, $n, "all $n events reached the endpoint");
is(scalar(grep { keys %{ $by{$_} } != 1 } keys %by), 0, 'an event repeated only with its webhook-id');
my $repeats = 0;
$repeats += $_ - 1 for map { values %$_ } values %by;
cmp_ok($repeats, '<=', 60, "repeats limited to what was in flight ($repeats)");

# kill -9 of httpd: the dispatcher goes with it (no orphan delivering alone)
my $disp = $h->dispatcher_pid;
kill 'KILL', $h->pid;
ok(wait_until(sub { !kill(0, $disp) }, 10), 'the dispatcher exits when httpd is killed');
# children of the killed parent linger until they notice; restart cleanly
system("pkill -KILL -f '$h->{dir}/httpd.conf'");
unlink "$h->{dir}/httpd.pid";
$h->start;
my $d2 = $h->dispatcher_pid;
ok($d2, 'started again');
q_at($db, q{SELECT octo_webhooks.emit('booking_update', '{"uuid": "after"}', 'res-c')});
ok($sink->wait_for(path => '/c', count => scalar(@{ $sink->requests('/c') }) + 1, timeout => 10), 'and delivers');
$h->stop;
ok(wait_until(sub { !kill(0, $d2) }, 10), 'apachectl stop leaves no dispatcher behind');
done_testing();
