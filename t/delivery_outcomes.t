# The outcomes' own connection (src/owh_outcomes.c, issue 10): each
# dispatcher records its outcomes on a second connection, named so that the
# status pages still count one dispatcher. Killed again and again while
# deliveries flow, it loses nothing: what its round trip carried goes again,
# meanwhile with the claims, and it comes back by itself.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Time::HiRes qw(sleep);
use POSIX ();

my $db = new_database();
my $h = start_httpd(conninfo => $db);
my $sink = start_sink();
my $tok = token('res-o', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
ok(api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'booking_update', url => $sink->url('/o') })->{json}{id}, 'webhook created');

my $owner_of = sub {
    my ($prefix) = @_;
    return map { $_->[0] } @{ q_at($db, q{SELECT substr(application_name, length($1) + 1) FROM pg_stat_activity
                                          WHERE application_name LIKE $1 || '%' ORDER BY 1}, $prefix) };
};
OWHDelivery::emit($db, 'booking_update', { uuid => 'b-first' }, 'res-o');
ok(wait_settled($db), 'a first delivery settled');
my @disp = $owner_of->('octo-webhooks dispatcher ');
my @outc = $owner_of->('octo-webhooks outcomes ');
is(scalar @disp, 1, 'one dispatcher connection');
is_deeply(\@outc, \@disp, 'and one outcomes connection, of the same dispatcher');
is(scalar @{ $h->status->{dispatchers} || [] }, 1, '/octo-status still counts one dispatcher');
my $pid = $h->dispatcher_pid;

# Kill the outcomes' backend every ~30 ms while 300 deliveries flow.
my $killer = fork() // die "fork: $!";
if (!$killer) {
    my $n = 0;
    for (1 .. 200) {
        $n += q_at($db, q{SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                           WHERE application_name LIKE 'octo-webhooks outcomes %') t})->[0][0];
        sleep(0.03);
    }
    POSIX::_exit($n > 255 ? 255 : $n);
}
q_at($db, q{DO $$ BEGIN FOR i IN 1..300 LOOP
              PERFORM octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-k-' || i), 'res-o');
              PERFORM pg_sleep(0.02);
            END LOOP; END $$});
waitpid($killer, 0);
my $killed = $? >> 8;
cmp_ok($killed, '>=', 2, "the outcomes' connection was killed $killed times while deliveries flowed");
ok(wait_settled($db, 30), 'every delivery settled, well inside the 60 s lease (none waited for its lease to run out)');
# (a connection killed while idle is found dead at its next use: one more event)
OWHDelivery::emit($db, 'booking_update', { uuid => 'b-last' }, 'res-o');
ok(wait_settled($db, 20), 'and one more');
is_deeply(q_at($db, q{SELECT status, count(*) FROM octo_webhooks.deliveries GROUP BY 1}), [['succeeded', 302]],
          'all 302 recorded as succeeded: no outcome lost');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries d
                WHERE NOT EXISTS (SELECT 1 FROM octo_webhooks.attempts a WHERE a.delivery_id = d.id)})->[0][0], 0,
   'each with its attempt in the log');
my %seen;
$seen{ $_->{json}{booking}{uuid} // '' }++ for @{ $sink->requests('/o') };
is(scalar(grep { ($seen{"b-k-$_"} // 0) == 1 } 1 .. 300), 300, 'the endpoint received each of the 300 exactly once');
is($h->dispatcher_pid, $pid, 'the same dispatcher throughout');
like($h->error_log, qr/OWH0051[567]:/, 'the failures were logged');
ok(wait_until(sub { my @o = $owner_of->('octo-webhooks outcomes '); @o == 1 }, 10),
   "the outcomes' connection is back by itself");
$h->stop;
done_testing();
