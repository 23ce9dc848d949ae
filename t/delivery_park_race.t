# An emit() whose transaction is still open when the delivery before it (same
# webhook, same object) ends: emit() parked the new delivery because the
# earlier one was pending; complete() looked for a parked successor to release
# before the emit committed and found none. Found by bench/faults (an object's
# deliveries to one webhook stopped for good at 20 emit()s/s); the dispatchers'
# unpark_orphans() now releases such a delivery within about a second. Since
# emit() only records the event (migration 008) the parking is decided when a
# dispatcher routes it, after the commit; the same race remains between one
# dispatcher's routing and another's complete(), and this test still holds
# the outcome: event 2 delivered after event 1, once, nothing left parked.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use IO::Handle ();
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksRetrySchedule 1s 1s');
my $sink = start_sink();
my $tok = token('res-p', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$sink->behave('/p', delay => 2);          # the first delivery stays in flight 2 s
my $wh = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => $sink->url('/p') })->{json}{id};
ok($wh, 'webhook created');

emit($db, 'booking_update', { uuid => 'b-1', seq => 1 }, 'res-p');
ok($sink->wait_for(path => '/p', count => 1, timeout => 10), 'event 1 is in flight');

# The supplier's transaction: emit() now, COMMIT after event 1's delivery ended.
open(my $tx, '|-', 'psql', '-X', '-q', '-o', '/dev/null', '-v', 'ON_ERROR_STOP=1', '-d', $db) or die "psql: $!";
$tx->autoflush(1);
print $tx "BEGIN;\nSELECT octo_webhooks.emit('booking_update', '{\"uuid\": \"b-1\", \"seq\": 2}', 'res-p');\n";
my $pending = sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending'})->[0][0] };
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM pg_stat_activity
                                 WHERE state = 'idle in transaction' AND query LIKE '%emit%'})->[0][0] == 1 }, 10),
   'event 2 emitted in a transaction still open');
ok(wait_until(sub { $pending->() == 0 }, 10), 'event 1 delivered while that transaction is open');
print $tx "COMMIT;\n";
close $tx;
is($?, 0, 'the transaction committed');

my $row = q_at($db, q{SELECT status, next_attempt_at = 'infinity' FROM octo_webhooks.deliveries d
                       JOIN octo_webhooks.events e ON e.id = d.event_id WHERE e.object->>'seq' = '2'})->[0];
note("event 2's delivery after the commit: status $row->[0], parked: $row->[1]");
ok(wait_until(sub { @{ $sink->requests('/p') } >= 2 }, 10), 'event 2 is delivered after the commit');
ok(wait_settled($db, 10), 'nothing left pending');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending'
                AND next_attempt_at = 'infinity'})->[0][0], 0, 'no delivery parked with nothing before it');
is_deeply([ map { $_->{json}{booking}{seq} } @{ $sink->requests('/p') } ], [ 1, 2 ], 'in event order, each once');
done_testing();
