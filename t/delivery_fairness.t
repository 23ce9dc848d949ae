# Fairness (issue 12 #4): a connection with 10,000 due deliveries to an
# endpoint that hangs does not delay another connection's fresh deliveries by
# more than 100 ms at p99 (compared with the same deliveries without the
# backlog, measured in the same run on the same machine).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(time sleep);

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksDeliveryTimeout 20s', 'OctoWebhooksLease 60s'));
my $dead = start_sink();
my $fresh = start_sink();
$dead->behave('/dead', delay => 25);                    # answers long after the test
my $ta = token('res-slow', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $tb = token('res-fresh', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
api('POST', '/webhooks', base => $h->base, token => $tb, json => { event => 'booking_update', url => $fresh->url('/b') });

# B's latency, emit -> received: emittedAt is taken inside the emitting statement
my $n = 0;
sub latencies {
    my ($count) = @_;
    my @ids;
    for (1 .. $count) {
        my $id = 'f-' . ++$n;
        push @ids, $id;
        q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', $1::text,
                      'emittedAt', extract(epoch FROM clock_timestamp())), 'res-fresh')}, $id);
        sleep 0.05;
    }
    my %want = map { $_ => 1 } @ids;
    my $got = wait_until(sub {
        my @r = grep { $want{ $_->{json}{booking}{uuid} // '' } } @{ $fresh->requests('/b') };
        @r == @ids ? \@r : undef }, 60) || [];
    my @lat = sort { $a <=> $b } map { $_->{time} - $_->{json}{booking}{emittedAt} } @$got;
    return \@lat;
}
sub p99 { my $l = shift; return @$l ? $l->[ int(0.99 * $#$l + 0.5) ] : 999 }

my $base = latencies(40);
is(scalar @$base, 40, 'without a backlog: every fresh delivery arrived');

# A: 10,000 due deliveries to an endpoint that hangs
api('POST', '/webhooks', base => $h->base, token => $ta, json => { event => 'booking_update', url => $dead->url('/dead') });
q_at($db, q{SELECT count(octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'a-' || g), 'res-slow'))
              FROM generate_series(1, 10000) g});
ok(wait_until(sub { @{ $dead->requests('/dead') } >= 1 }, 20), "A's endpoint is being tried (and hangs)");
# (routed by the dispatcher, a thousand a claim, ahead of B's later events)
my $due = 0;
wait_until(sub { ($due = q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries
                                      WHERE connection_id = 'res-slow' AND status = 'pending'})->[0][0]) >= 9900 }, 20);
cmp_ok($due, '>=', 9900, "A has $due deliveries waiting");

my $with = latencies(40);
is(scalar @$with, 40, 'with the backlog: every fresh delivery arrived');
my ($p0, $p1) = (p99($base), p99($with));
cmp_ok($p1 - $p0, '<=', 0.100, sprintf('B\'s p99 emit->received: %.1f ms with A\'s backlog, %.1f ms without: '
       . 'at most 100 ms more', 1000 * $p1, 1000 * $p0));
# A's claims went back to the queue by the hundred (its host was full): each
# hand-back took its lease out of A's in-flight count, which matches the
# leases still running (read in one snapshot)
my ($count, $leases) = @{ q_at($db, q{
    SELECT (SELECT coalesce(sum(f.in_flight), 0) FROM octo_webhooks.webhook_flight f
             WHERE f.webhook_id IN (SELECT id FROM octo_webhooks.webhooks WHERE connection_id = 'res-slow')),
           (SELECT count(*) FROM octo_webhooks.deliveries d WHERE d.connection_id = 'res-slow'
               AND d.status = 'pending' AND d.claim_id IS NOT NULL AND d.next_attempt_at > clock_timestamp()
               AND d.next_attempt_at < 'infinity')})->[0] };
cmp_ok($leases, '>', 0, "A has $leases deliveries in flight");
is($count, $leases, "A's in-flight count is its running leases, after hand-backs");
done_testing();
