# emit() wakes a dispatcher only when one waits (issue 10: NOTIFY's commit
# lock serializes the suppliers' commits). What a LISTENing session receives
# from emit(): nothing while no dispatcher is listed as waiting, a NOTIFY
# when one is, and always under REPEATABLE READ (the caller's snapshot may
# predate the listing). And the listing works end to end: an idle
# dispatcher whose poll is a minute away delivers each event of a trickle
# within seconds, so it must have been woken by a NOTIFY every time.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(time sleep);

my $db = new_database();
start_httpd(conninfo => $db, directives => 'OctoWebhooksDispatcher Off')->stop;   # the module migrates
q_at($db, q{INSERT INTO octo_webhooks.connections (id) VALUES ('res-w')});

# Runs $emit while a session LISTENs; returns how many NOTIFYs it received.
my $n = 0;
sub notifies_during {
    my ($emit) = @_;
    my $tag = 'owh-listen-' . ++$n;
    my $out = "/tmp/owh-wake-$$-$n.out";
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        open(STDOUT, '>', $out) or die;
        open(STDERR, '>&', \*STDOUT);
        exec('psql', '-X', '-q', '-d', $db, '-c', 'LISTEN octo_webhooks',
             '-c', "SELECT pg_sleep(2.5) /* $tag */") or die "psql: $!";
    }
    # (the listener is LISTENing once its second command runs; not this query itself)
    wait_until(sub { q_at($db, q{SELECT count(*) FROM pg_stat_activity
                                  WHERE query LIKE $1 AND pid <> pg_backend_pid() AND state = 'active'},
                          "%/* $tag */%")->[0][0] > 0 }, 10) or diag('the listener did not start');
    $emit->();
    waitpid($pid, 0);
    open(my $fh, '<', $out) or die "$out: $!";
    my $got = grep { /Asynchronous notification "octo_webhooks"/ } <$fh>;
    close $fh;
    unlink $out;
    return $got;
}

my $emit = sub { q_at($db, q{SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-' || gen_random_uuid()), 'res-w')}) };
is(notifies_during($emit), 0, 'no dispatcher waits: emit() sends no NOTIFY');
q_at($db, q{INSERT INTO octo_webhooks.dispatcher_sleep (owner) VALUES ('test:1')});
is(notifies_during($emit), 1, 'a dispatcher waits: emit() wakes it');
q_at($db, q{DELETE FROM octo_webhooks.dispatcher_sleep});
is(notifies_during(sub {
    q_at($db, q{BEGIN ISOLATION LEVEL REPEATABLE READ;
                SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-rr"}', 'res-w');
                COMMIT}) }), 1, 'under REPEATABLE READ emit() always notifies');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.events WHERE NOT routed})->[0][0], 3,
   'with no dispatcher the events wait, unrouted');

# End to end: a dispatcher whose poll is a minute away.
q_at($db, q{DELETE FROM octo_webhooks.events});
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksPollInterval 60s');
my $sink = start_sink();
my $tok = token('res-w', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
ok(api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => $sink->url('/w') })->{json}{id}, 'webhook created');
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.dispatcher_sleep})->[0][0] == 1 }, 10),
   'the idle dispatcher lists itself as waiting');
my ($slow, $worst) = (0, 0);
for my $i (1 .. 12) {
    my $t0 = time;
    OWHDelivery::emit($db, 'booking_update', { uuid => "b-trickle-$i" }, 'res-w');
    my $got = $sink->wait_for(path => '/w', count => $i, timeout => 10);
    my $dt = time - $t0;
    $worst = $dt if $dt > $worst;
    $slow++ if @$got < $i || $dt > 5;
    sleep(0.05 + rand(0.2));
}
is($slow, 0, sprintf('a trickle of 12 events: each delivered within seconds (worst %.2f s), not at the next poll', $worst));
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.dispatcher_sleep})->[0][0] == 1 }, 10),
   'idle again: listed again');
$h->stop;
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.dispatcher_sleep})->[0][0], 0,
   'a dispatcher that stops is no longer listed (emit() stops notifying for it)');
done_testing();
